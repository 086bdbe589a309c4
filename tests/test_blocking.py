"""Blocking: rules, plan, pair decoders and launchers, counts; oracles: brute force and Splink 5.

The reference encoder here is independent of gpulink's encoder: DuckDB evaluates each key
expression and pandas factorises the values; records are put in Splink's orientation order.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gpulink.blocking import (
    BlockingRule,
    block_on,
    blocked_pairs,
    build_plan,
    count_pairs,
    group_ids,
    iter_blocked_pairs,
    to_blocking_rule,
    to_blocking_rules,
)
from gpulink.errors import SettingsError
from gpulink.kernels import pairs as kp
from gpulink.kernels._targets import cpu

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _data(name: str) -> Path:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"reference data {path} is absent (see shared/data/README.md)")
    return path


# --------------------------------------------------------------------------------------------
# Reference encoder and brute-force oracle
# --------------------------------------------------------------------------------------------


def reference_table(df: pd.DataFrame, expressions, link_type: str, sd: str = "source_dataset"):
    """A RecordTable stand-in: DuckDB computes the expressions, records in Splink's order."""
    import duckdb

    con = duckdb.connect()
    con.register("t", df)
    if link_type == "dedupe_only":
        order = "unique_id"
    else:
        order = f"{sd} || '-__-' || CAST(unique_id AS VARCHAR)"
    sel = ", ".join(f"{e} AS e{i}" for i, e in enumerate(expressions))
    src_sel = f", {sd} AS __sd" if link_type != "dedupe_only" else ""
    out = con.execute(f"SELECT unique_id{src_sel}, {sel} FROM t ORDER BY {order}").df()
    columns = {}
    for i, e in enumerate(expressions):
        codes, uniques = pd.factorize(out[f"e{i}"], use_na_sentinel=True)
        columns[e] = SimpleNamespace(
            codes=codes.astype(np.int32), dictionary=pa.array(list(uniques), pa.string())
        )
    if link_type == "dedupe_only":
        src, names = np.zeros(len(out), np.int32), []
    else:
        names = sorted(out["__sd"].unique())
        src = np.searchsorted(names, out["__sd"]).astype(np.int32)
    return SimpleNamespace(
        n_records=len(out),
        unique_id=out["unique_id"].to_numpy(),
        source_dataset=out["__sd"].to_numpy() if names else None,
        source_codes=src,
        source_names=names,
        columns=columns,
        link_type=link_type,
    )


def brute_force(table, rules, link_type):
    """Every emitted (i, j, match_key) by definition: first satisfied rule, link type applied."""
    rules = to_blocking_rules(rules)
    codes = [[table.columns[e].codes for e in r.expressions] for r in rules]
    out = set()
    for i, j in itertools.combinations(range(table.n_records), 2):
        if link_type == "link_only" and table.source_codes[i] == table.source_codes[j]:
            continue
        for k, cs in enumerate(codes):
            if all(c[i] >= 0 and c[i] == c[j] for c in cs):
                out.add((i, j, k))
                break
    return out


def random_table(rng, n, n_sources=3, cards=(5, 3, 8)):
    cols = {
        f"c{t}": np.where(rng.random(n) < 0.15, -1, rng.integers(0, card, n)).astype(np.int32)
        for t, card in enumerate(cards)
    }
    return SimpleNamespace(
        n_records=n,
        source_codes=rng.integers(0, n_sources, n).astype(np.int32),
        source_names=[f"s{t}" for t in range(n_sources)],
        columns={k: SimpleNamespace(codes=v) for k, v in cols.items()},
        link_type="dedupe_only",
    )


def as_set(chunk):
    return set(zip(chunk.left.tolist(), chunk.right.tolist(), chunk.match_key.tolist()))


# --------------------------------------------------------------------------------------------
# Decoders
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("build", ["python", "cpu"])
def test_triangle_decode_matches_itertools(build):
    row = kp.triangle_row if build == "python" else cpu(kp.triangle_row)
    start = kp.triangle_start if build == "python" else cpu(kp.triangle_start)
    for n in range(2, 40):
        for q, (a, b) in enumerate(itertools.combinations(range(n), 2)):
            ra = row(n, q)
            assert (ra, ra + 1 + q - start(n, ra)) == (a, b)


@pytest.mark.parametrize("build", ["python", "cpu"])
@pytest.mark.parametrize("n", [1_000_000, 1_500_000, 4_000_000, 50_000_000])
def test_triangle_decode_giant_blocks_exact(build, n):
    row = kp.triangle_row if build == "python" else cpu(kp.triangle_row)
    total = n * (n - 1) // 2  # 1.1e12 pairs at n = 1.5e6
    rng = np.random.default_rng(n)
    qs = [0, 1, 2, n - 2, n - 1, n, total - 1, total - 2, total - 3, total - n, total // 2]
    qs += [int(x) for x in rng.integers(0, total, 200)]
    qs += [total - 1 - int(x) for x in rng.integers(0, 10 * n, 100)]
    for q in qs:
        a = int(row(np.int64(n), np.int64(q)))
        s = a * (2 * n - a - 1) // 2  # exact Python ints
        s_next = (a + 1) * (2 * n - a - 2) // 2
        assert 0 <= a <= n - 2 and s <= q < s_next, (n, q, a)
        assert a + 1 + q - s < n


def test_decode_pair_matches_launcher_walk_and_brute_force():
    rng = np.random.default_rng(3)
    table = random_table(rng, 120)
    rules = [block_on("c0"), block_on("c1", "c2"), block_on("c1")]
    for link_type in ("dedupe_only", "link_only", "link_and_dedupe"):
        plan = build_plan(table, rules, link_type)
        decoded = []
        for p in range(plan.n_candidates):  # the pure-Python bodies, one index at a time
            i, j, k = kp.decode_pair(
                p,
                plan.seg_start,
                plan.n_segments,
                plan.seg_a,
                plan.seg_na,
                plan.seg_b,
                plan.seg_nb,
                plan.seg_rule,
                plan.members,
            )
            assert i < j
            if kp.pair_is_emitted(i, j, k, plan.groups, plan.source_codes, plan.link_type_code):
                decoded.append((int(i), int(j), int(k)))
        walked = blocked_pairs(plan)
        assert decoded == list(zip(*(a.tolist() for a in walked)))
        assert set(decoded) == brute_force(table, rules, link_type)
        assert len(set(decoded)) == len(decoded)


def test_group_ids_dense_and_null():
    a = np.array([1, 1, 2, -1, 2, 1], np.int32)
    b = np.array([0, 0, 0, 0, -1, 3], np.int32)
    g = group_ids([a, b])
    assert g[3] == -1 and g[4] == -1
    assert g[0] == g[1] != g[2] != g[5] and g[0] != g[5]
    assert sorted(set(g[g >= 0].tolist())) == [0, 1, 2]


# --------------------------------------------------------------------------------------------
# Launchers and the plan against brute force
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_only", "link_and_dedupe"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blocked_pairs_equal_brute_force(link_type, seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, 150, n_sources=2 + seed)
    rules = [block_on("c1", "c0"), block_on("c0"), block_on("c2"), block_on("c1")]
    expected = brute_force(table, rules, link_type)
    got = blocked_pairs(table, rules, link_type)
    assert len(got) == len(expected) and as_set(got) == expected
    counts = count_pairs(table, rules, link_type)
    assert counts.tolist() == [sum(1 for t in expected if t[2] == k) for k in range(len(rules))]


def test_chunking_is_exact_and_deterministic():
    rng = np.random.default_rng(7)
    table = random_table(rng, 40)
    rules = [block_on("c0"), block_on("c2")]
    whole = blocked_pairs(table, rules, "link_and_dedupe")
    for chunk_pairs in (1, 7, 64, 1000):
        chunks = list(iter_blocked_pairs(table, rules, "link_and_dedupe", chunk_pairs=chunk_pairs))
        assert all(len(c) <= chunk_pairs for c in chunks)
        cat = [np.concatenate([getattr(c, f) for c in chunks]) for f in ("left", "right")]
        assert np.array_equal(cat[0], whole.left) and np.array_equal(cat[1], whole.right)


def test_link_only_wastes_no_pair_space_on_same_source_pairs():
    # one block of 1000 records: 990 from source 0, 10 from source 1
    n = 1000
    table = SimpleNamespace(
        n_records=n,
        source_codes=np.r_[np.zeros(990), np.ones(10)].astype(np.int32),
        source_names=["a", "b"],
        columns={"k": SimpleNamespace(codes=np.zeros(n, np.int32))},
    )
    plan = build_plan(table, [block_on("k")], "link_only")
    assert plan.n_candidates == 990 * 10
    assert count_pairs(plan).tolist() == [9900]


def test_empty_and_all_null():
    table = SimpleNamespace(
        n_records=5,
        source_codes=np.zeros(5, np.int32),
        source_names=[],
        columns={"k": SimpleNamespace(codes=np.full(5, -1, np.int32))},
    )
    assert count_pairs(table, [block_on("k")], "dedupe_only").tolist() == [0]
    assert len(blocked_pairs(table, [block_on("k")], "dedupe_only")) == 0


def test_missing_column_is_a_settings_error():
    rng = np.random.default_rng(0)
    with pytest.raises(SettingsError, match="not_there"):
        build_plan(random_table(rng, 10), [block_on("not_there")], "dedupe_only")


# --------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------

EXPRESSIONS = [
    "first_name",
    "substr(surname,1,4)",
    "lower(city)",
    "first name",
    "SUBSTR(dob, 1, 4)",
    '"surname"',
    "lower(substr(surname,1,3))",
    "left(surname, 3)",
    "trim(lower(city))",
]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_block_on_sql_matches_splink(expr):
    splink = pytest.importorskip("splink")
    theirs = splink.block_on(expr).get_blocking_rule("duckdb").blocking_rule_sql
    assert block_on(expr).sql == theirs
    # and Splink's own SQL parses back to the same rule
    assert to_blocking_rule(theirs) == block_on(expr)
    assert to_blocking_rule(splink.block_on(expr)) == block_on(expr)


def test_multi_expression_sql_and_dict_round_trip():
    splink = pytest.importorskip("splink")
    exprs = ("first_name", "substr(surname,1,2)", "dob")
    rule = block_on(*exprs)
    theirs = splink.block_on(*exprs)
    assert rule.to_dict() == {
        "blocking_rule": theirs.get_blocking_rule("duckdb").blocking_rule_sql,
        "sql_dialect": "duckdb",
    }
    back = BlockingRule.from_dict(rule.to_dict())
    assert back == rule and back.sql == rule.sql
    assert to_blocking_rule(theirs.create_blocking_rule_dict("duckdb")) == rule


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("l.first_name = r.first_name and l.dob = r.dob", ("first_name", "dob")),
        ('l."surname" = r."surname"', ("surname",)),
        ("substr(l.surname,1,3) = substr(r.surname,1,3)", ("substr(surname,1,3)",)),
        ("(l.a = r.a) AND ((r.b = l.b))", ("a", "b")),
        ("lower(l.city) = lower(r.city)", ("lower(city)",)),
    ],
)
def test_sql_rules_parse(sql, expected):
    rule = to_blocking_rule(sql)
    assert rule == block_on(*expected)
    assert rule.sql == sql  # Splink keeps the user's SQL text verbatim


@pytest.mark.parametrize(
    "sql",
    [
        "l.first_name = r.first_name or l.dob = r.dob",
        "l.first_name = r.surname",
        "l.dob >= r.dob",
        "levenshtein(l.surname, r.surname) < 2",
        "l.first_name = r.first_name and l.dob != r.dob",
        "NOT (l.a = r.a)",
        "l.a = l.a",
        "1=1",
    ],
)
def test_unsupported_rules_raise_settings_error_naming_the_rule(sql):
    with pytest.raises(SettingsError, match="gpulink supports") as info:
        to_blocking_rule(sql)
    assert sql in str(info.value) or repr(sql) in str(info.value)


def test_rule_misc():
    assert repr(block_on("a", "b")) == "block_on('a', 'b')"
    assert block_on("a", "b") == block_on("b", "a")
    r = block_on("a", salting_partitions=4)
    assert r.to_dict()["salting_partitions"] == 4
    with pytest.raises(SettingsError):
        block_on(["a", "b"])
    with pytest.raises(SettingsError, match="arrays_to_explode"):
        to_blocking_rule({"blocking_rule": "l.a = r.a", "arrays_to_explode": ["a"]})


# --------------------------------------------------------------------------------------------
# Splink parity (Splink 5 + DuckDB is the oracle)
# --------------------------------------------------------------------------------------------

FAKE_RULES = [
    lambda m: m.block_on("first_name"),
    lambda m: m.block_on("substr(surname,1,2)", "dob"),
    lambda m: "l.city = r.city and l.email = r.email",
    lambda m: m.block_on("lower(city)", "substr(dob,1,4)"),
    lambda m: m.block_on("surname"),
]


def splink_pairs(dfs, rules, link_type):
    """Splink's blocked pairs: {(source_l, uid_l, source_r, uid_r, match_key)}."""
    import splink
    from splink import DuckDBAPI, Linker, SettingsCreator

    db = DuckDBAPI()
    settings = SettingsCreator(
        link_type=link_type, blocking_rules_to_generate_predictions=rules, comparisons=[]
    )
    inputs = [db.register(d) for d in dfs]
    linker = Linker(inputs if len(inputs) > 1 else inputs[0], settings)
    r = linker.inference.deterministic_link().as_pandas_dataframe()
    assert splink.__version__.startswith("5")
    sl = r["source_dataset_l"] if "source_dataset_l" in r else [None] * len(r)
    sr = r["source_dataset_r"] if "source_dataset_r" in r else [None] * len(r)
    return set(
        zip(
            sl,
            r["unique_id_l"].astype(str),
            sr,
            r["unique_id_r"].astype(str),
            r["match_key"].astype(str),
        )
    )


def gpulink_pairs(table, rules, link_type):
    got = blocked_pairs(table, rules, link_type)

    def py(values):
        return values.to_pylist() if hasattr(values, "to_pylist") else list(values)

    uid = [str(u) for u in py(table.unique_id)]
    sd = py(table.source_dataset) if table.source_dataset is not None else [None] * len(uid)
    out = set()
    for i, j, k in zip(got.left, got.right, got.match_key):
        out.add((sd[i], uid[i], sd[j], uid[j], str(k)))  # Splink's match_key is a string
    assert len(out) == len(got)
    return out


def _split(df, parts):
    from gpulink.io import default_dataset_name

    dfs = [df[df.unique_id % parts == t].reset_index(drop=True) for t in range(parts)]
    concat = pd.concat(
        [d.assign(source_dataset=default_dataset_name(t)) for t, d in enumerate(dfs)]
    )
    return dfs, concat


@pytest.mark.parametrize(
    "link_type, parts",
    [("dedupe_only", 1), ("link_only", 2), ("link_only", 3), ("link_and_dedupe", 2)],
)
def test_fake_1000_pairs_equal_splink(link_type, parts):
    splink = pytest.importorskip("splink")
    df = pd.read_csv(_data("fake_1000.csv"))
    ours = to_blocking_rules([make(__import__("gpulink.blocking").blocking) for make in FAKE_RULES])
    theirs = [make(splink) for make in FAKE_RULES]
    if parts == 1:
        dfs, concat = [df], df
    else:
        dfs, concat = _split(df, parts)
    exprs = list(dict.fromkeys(e for r in ours for e in r.expressions))
    table = reference_table(concat, exprs, link_type)
    expected = splink_pairs(dfs, theirs, link_type)
    assert len(expected) > 500
    assert gpulink_pairs(table, ours, link_type) == expected


def test_historical_50k_pairs_equal_splink():
    splink = pytest.importorskip("splink")
    df = pd.read_parquet(_data("historical_50k.parquet"))
    specs = [
        ("first_name", "surname"),
        ("dob", "substr(surname,1,2)"),
        ("postcode_fake", "first_name"),
        ("lower(birth_place)", "dob"),
        ("occupation", "dob"),
    ]
    ours = [block_on(*s) for s in specs]
    theirs = [splink.block_on(*s) for s in specs]
    exprs = list(dict.fromkeys(e for r in ours for e in r.expressions))
    table = reference_table(df, exprs, "dedupe_only")
    expected = splink_pairs([df], theirs, "dedupe_only")
    assert len(expected) > 10_000
    assert gpulink_pairs(table, ours, "dedupe_only") == expected


# --------------------------------------------------------------------------------------------
# Blocking analysis against splink.blocking_analysis
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "link_type, parts", [("dedupe_only", 1), ("link_only", 2), ("link_and_dedupe", 3)]
)
def test_counts_equal_splink_blocking_analysis(link_type, parts):
    splink = pytest.importorskip("splink")
    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules as theirs_fn

    from gpulink.blocking_analysis import count_comparisons_from_blocking_rules

    df = pd.read_csv(_data("fake_1000.csv"))
    dfs, concat = ([df], df) if parts == 1 else _split(df, parts)
    ours_rules = to_blocking_rules(
        [make(__import__("gpulink.blocking").blocking) for make in FAKE_RULES]
    )
    db = DuckDBAPI()
    theirs = theirs_fn(
        [db.register(d) for d in dfs] if parts > 1 else db.register(df),
        blocking_rules=[make(splink) for make in FAKE_RULES],
        link_type=link_type,
        record_sample_proportion=1.0,
    )
    exprs = list(dict.fromkeys(e for r in ours_rules for e in r.expressions))
    table = reference_table(concat, exprs, link_type)
    ours = count_comparisons_from_blocking_rules(
        table, blocking_rules=ours_rules, link_type=link_type
    )
    assert ours == theirs


def test_pre_filter_counts_and_largest_blocks_equal_splink():
    splink = pytest.importorskip("splink")
    from splink import DuckDBAPI
    from splink.blocking_analysis import n_largest_blocks as theirs_fn

    from gpulink.blocking_analysis import (
        count_comparisons_from_blocking_rule,
        cumulative_comparisons_to_be_scored_from_blocking_rules_data,
        largest_blocks,
        n_largest_blocks,
    )

    df = pd.read_csv(_data("fake_1000.csv"))
    db = DuckDBAPI()
    for link_type, parts in (("dedupe_only", 1), ("link_only", 2)):
        dfs, concat = ([df], df) if parts == 1 else _split(df, parts)
        rule = block_on("substr(surname,1,2)", "lower(city)")
        table = reference_table(concat, list(rule.expressions), link_type)
        inputs = [db.register(d) for d in dfs] if parts > 1 else db.register(df)
        theirs = theirs_fn(
            inputs,
            blocking_rule=splink.block_on("substr(surname,1,2)", "lower(city)"),
            link_type=link_type,
            n_largest=100_000,
        ).as_pandas_dataframe()
        ours = n_largest_blocks(table, blocking_rule=rule, link_type=link_type, n_largest=100_000)
        assert list(ours.columns) == list(theirs.columns)

        def rows(frame):
            return sorted(map(tuple, frame.astype(str).to_numpy().tolist()))

        assert rows(ours) == rows(theirs)
        assert ours["block_count"].is_monotonic_decreasing
        pre = count_comparisons_from_blocking_rule(table, blocking_rule=rule, link_type=link_type)
        assert pre["number_of_comparisons_generated_pre_filter_conditions"] == int(
            theirs["block_count"].sum()
        )
        post = count_pairs(table, [rule], link_type)[0]
        assert pre["number_of_comparisons_to_be_scored_post_filter_conditions"] == post

    rules = [block_on("first_name"), block_on("dob")]
    table = reference_table(df, ["first_name", "dob"], "dedupe_only")
    frame = cumulative_comparisons_to_be_scored_from_blocking_rules_data(
        table, blocking_rules=rules, link_type="dedupe_only"
    )
    assert list(frame.columns) == [
        "blocking_rule",
        "row_count",
        "cumulative_rows",
        "cartesian",
        "match_key",
        "start",
    ]
    assert frame["row_count"].tolist() == count_pairs(table, rules, "dedupe_only").tolist()
    lb = largest_blocks(table, blocking_rules=rules, link_type="dedupe_only", n_largest=3)
    assert lb["match_key"].tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    "link_type, parts", [("dedupe_only", 1), ("link_only", 2), ("link_and_dedupe", 3)]
)
def test_end_to_end_with_gpulink_encoder_equals_splink(link_type, parts):
    """Raw DataFrames through gpulink.io + gpulink.table.encode_records, pairs and counts."""
    splink = pytest.importorskip("splink")
    try:
        from gpulink.table import encode_records
    except ImportError:
        pytest.skip("gpulink.table.encode_records is not available yet")
    from splink import DuckDBAPI
    from splink.blocking_analysis import count_comparisons_from_blocking_rules as theirs_fn

    from gpulink.blocking_analysis import count_comparisons_from_blocking_rules

    df = pd.read_csv(_data("fake_1000.csv"))
    dfs = [df] if parts == 1 else _split(df, parts)[0]
    data = dfs[0] if parts == 1 else dfs
    gl = __import__("gpulink.blocking").blocking
    ours = to_blocking_rules([make(gl) for make in FAKE_RULES])
    theirs = [make(splink) for make in FAKE_RULES]
    exprs = list(dict.fromkeys(e for r in ours for e in r.expressions))
    table = encode_records(data, exprs, link_type=link_type)
    assert gpulink_pairs(table, ours, link_type) == splink_pairs(dfs, theirs, link_type)

    db = DuckDBAPI()
    expected = theirs_fn(
        [db.register(d) for d in dfs] if parts > 1 else db.register(df),
        blocking_rules=theirs,
        link_type=link_type,
        record_sample_proportion=1.0,
    )
    got = count_comparisons_from_blocking_rules(data, blocking_rules=ours, link_type=link_type)
    assert got == expected
