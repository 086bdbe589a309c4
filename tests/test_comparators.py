"""String and numeric comparators against independent oracles: rapidfuzz, DuckDB, the naive
references in tests/reference.py and Splink's own SQL, on many thousands of pairs."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.reference as ref
from gpulink import comparators as gc
from gpulink.errors import InputError
from gpulink.kernels import numeric as kn
from gpulink.kernels import strings as ks
from gpulink.kernels._targets import cpu

rapidfuzz = pytest.importorskip("rapidfuzz")
duckdb = pytest.importorskip("duckdb")
from rapidfuzz.distance import (  # noqa: E402
    DamerauLevenshtein,
    Jaro,
    JaroWinkler,
    Levenshtein,
)
from rapidfuzz.process import cpdist  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SIM_TOL = 1e-12

# Unicode alphabet: accents (precomposed and combining), CJK, emoji (with a modifier), German
# sharp s, dotted capital I, Cyrillic and Arabic, so that multi-byte UTF-8 is everywhere.
UNICODE = "abcdeéèñü\u0301\u0308日本語中文한국😀👍🏽ßİжяسلا "
ASCII = "abcdefghijklmnopqrstuvwxyz '-"

SIMILARITIES = {
    "jaro": (gc.jaro, Jaro.similarity, ref.jaro),
    "jaro_winkler": (gc.jaro_winkler, JaroWinkler.similarity, ref.jaro_winkler),
}
DISTANCES = {
    "levenshtein": (gc.levenshtein, Levenshtein.distance, ref.levenshtein),
    "damerau_levenshtein": (
        gc.damerau_levenshtein,
        DamerauLevenshtein.distance,
        ref.damerau_levenshtein,
    ),
}
DUCKDB_NAMES = {
    "jaro": "jaro_similarity",
    "jaro_winkler": "jaro_winkler_similarity",
    "levenshtein": "levenshtein",
    "damerau_levenshtein": "damerau_levenshtein",
    "jaccard": "jaccard",
}


# ---------------------------------------------------------------------------------------------
# Pair generators
# ---------------------------------------------------------------------------------------------


def _edit(rng: random.Random, s: str, alphabet: str, n_edits: int) -> str:
    chars = list(s)
    for _ in range(n_edits):
        op = rng.random()
        if op < 0.25 and chars:
            chars.pop(rng.randrange(len(chars)))
        elif op < 0.5:
            chars.insert(rng.randint(0, len(chars)), rng.choice(alphabet))
        elif op < 0.75 and chars:
            chars[rng.randrange(len(chars))] = rng.choice(alphabet)
        elif len(chars) > 1:  # transpose neighbours (sometimes a few apart)
            i = rng.randrange(len(chars) - 1)
            j = min(len(chars) - 1, i + rng.choice([1, 1, 1, 2, 3]))
            chars[i], chars[j] = chars[j], chars[i]
    return "".join(chars)


def random_edit_pairs(seed: int, alphabet: str, n: int, lengths: list[int]) -> list[tuple]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        a = "".join(rng.choice(alphabet) for _ in range(rng.choice(lengths)))
        if rng.random() < 0.2:
            b = "".join(rng.choice(alphabet) for _ in range(rng.choice(lengths)))
        else:
            b = _edit(rng, a, alphabet, rng.randint(0, 6))
        pairs.append((a, b) if rng.random() < 0.5 else (b, a))
    return pairs


def long_pairs(seed: int, n: int) -> list[tuple]:
    """200+ code-point strings, and mixed pairs with one side <= 64 and the other > 64."""
    rng = random.Random(seed)
    pairs = []
    for k in range(n):
        alphabet = ASCII if k % 2 else UNICODE
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(200, 320)))
        pairs.append((a, _edit(rng, a, alphabet, rng.randint(0, 25))))
        short = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64)))
        longer = short + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        longer = _edit(rng, longer, alphabet, rng.randint(0, 5))
        pairs.append((short, longer) if k % 3 else (longer, short))
        mid = "".join(rng.choice(alphabet) for _ in range(rng.randint(60, 70)))
        pairs.append((mid, _edit(rng, mid, alphabet, rng.randint(0, 8))))
    return pairs


def edge_pairs() -> list[tuple]:
    base = ["", "a", "ab", "abc", "martha", "é", "e\u0301", "日本", "😀", "a" * 64, "b" * 65]
    return [(x, y) for x in base for y in base] + [(x, x) for x in base]


def name_pairs(max_pairs: int = 4000, seed: int = 7) -> list[tuple]:
    """Pairs of real name variants: records in the same true cluster (plus random pairs)."""
    if not DATA.exists():
        pytest.skip(f"reference data not found at {DATA}")
    rng = np.random.default_rng(seed)
    pairs: list[tuple] = []
    hist = pd.read_parquet(DATA / "historical_50k.parquet")
    fake = pd.read_csv(DATA / "fake_1000.csv")
    for df, cols in (
        (hist, ["first_name", "surname", "full_name"]),
        (fake, ["first_name", "surname"]),
    ):
        for col in cols:
            sub = df[["cluster", col]].dropna()
            grouped = sub.groupby("cluster")[col].apply(list)
            for values in grouped:
                if len(values) < 2:
                    continue
                i, j = rng.choice(len(values), 2, replace=False)
                pairs.append((values[i], values[j]))
            vals = sub[col].to_numpy()
            idx = rng.integers(0, len(vals), size=(500, 2))
            pairs.extend((vals[i], vals[j]) for i, j in idx)
    rng.shuffle(pairs)
    return [tuple(p) for p in pairs[:max_pairs]]


@pytest.fixture(scope="module")
def all_pairs() -> dict[str, list[tuple]]:
    return {
        "names": name_pairs(),
        "ascii": random_edit_pairs(1, ASCII, 3000, [0, 1, 2, 3, 5, 8, 12, 20, 40]),
        "small_alphabet": random_edit_pairs(2, "ab", 1500, [0, 1, 2, 4, 7, 10]),
        "unicode": random_edit_pairs(3, UNICODE, 3000, [0, 1, 2, 4, 8, 16, 30]),
        "long": long_pairs(4, 150),
        "edge": edge_pairs(),
    }


def _split(pairs):
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _duckdb(metric: str, a: list[str], b: list[str]) -> np.ndarray:
    con = duckdb.connect()
    tbl = pa.table({"k": np.arange(len(a)), "a": a, "b": b})  # noqa: F841 (scanned by name)
    fn = DUCKDB_NAMES[metric]
    # DuckDB's jaccard raises on an empty string: ask it only about non-empty ones.
    args = "nullif(a, ''), nullif(b, '')" if metric == "jaccard" else "a, b"
    rows = con.execute(f"select {fn}({args}) from tbl order by k").fetchall()
    return np.array([np.nan if r[0] is None else r[0] for r in rows], dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Differential tests: gpulink (CPU backend) vs rapidfuzz, DuckDB and the references
# ---------------------------------------------------------------------------------------------

GROUPS = ["names", "ascii", "small_alphabet", "unicode", "long", "edge"]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("metric", list(SIMILARITIES))
def test_similarities_match_rapidfuzz(all_pairs, group, metric):
    a, b = _split(all_pairs[group])
    ours, scorer, _ = SIMILARITIES[metric]
    got = ours(a, b, backend="cpu")
    want = cpdist(a, b, scorer=scorer, workers=1, dtype=np.float64)
    bad = np.flatnonzero(np.abs(got - want) > SIM_TOL)
    assert bad.size == 0, [(a[i], b[i], got[i], want[i]) for i in bad[:5]]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("metric", list(DISTANCES))
def test_distances_match_rapidfuzz(all_pairs, group, metric):
    a, b = _split(all_pairs[group])
    ours, scorer, _ = DISTANCES[metric]
    got = ours(a, b, backend="cpu")
    want = cpdist(a, b, scorer=scorer, workers=1, dtype=np.int64)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, [(a[i], b[i], got[i], want[i]) for i in bad[:5]]


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("metric", list(DUCKDB_NAMES))
def test_match_duckdb(all_pairs, group, metric):
    pairs = all_pairs[group]
    if metric in ("jaro", "jaro_winkler"):
        # Documented difference: DuckDB scores two empty strings 0.0 (rapidfuzz and gpulink 1.0).
        pairs = [p for p in pairs if p != ("", "")]
    a, b = _split(pairs)
    got = getattr(gc, metric)(a, b, backend="cpu")
    want = _duckdb(metric, a, b)
    close = (np.abs(got - want) <= SIM_TOL) | (np.isnan(got) & np.isnan(want))
    bad = np.flatnonzero(~close)
    assert bad.size == 0, [(a[i], b[i], got[i], want[i]) for i in bad[:5]]


def test_duckdb_both_empty_difference_is_as_documented():
    assert _duckdb("jaro_winkler", [""], [""])[0] == 0.0
    assert gc.jaro_winkler([""], [""], backend="cpu")[0] == 1.0 == JaroWinkler.similarity("", "")
    with pytest.raises(duckdb.Error):
        duckdb.sql("select jaccard('', 'a')").fetchall()
    assert np.isnan(gc.jaccard([""], ["a"], backend="cpu")[0])


@pytest.mark.parametrize("group", ["names", "small_alphabet", "unicode", "edge"])
def test_references_agree_with_rapidfuzz_and_kernels(all_pairs, group):
    """The naive references vs rapidfuzz and vs the kernels (a subset: they are slow)."""
    pairs = all_pairs[group][:600]
    a, b = _split(pairs)
    for metric, (ours, scorer, reference) in {**SIMILARITIES, **DISTANCES}.items():
        want = np.array([reference(x, y) for x, y in pairs], dtype=np.float64)
        rf = np.array([scorer(x, y) for x, y in pairs], dtype=np.float64)
        got = ours(a, b, backend="cpu")
        assert np.max(np.abs(want - rf), initial=0) <= SIM_TOL, metric
        assert np.max(np.abs(want - got), initial=0) <= SIM_TOL, metric
    want = np.array([ref.jaccard(x, y) for x, y in pairs])
    got = gc.jaccard(a, b, backend="cpu")
    np.testing.assert_allclose(got, want, rtol=0, atol=SIM_TOL)


def test_references_on_long_strings(all_pairs):
    pairs = all_pairs["long"][:12]
    a, b = _split(pairs)
    for ours, _, reference in [*SIMILARITIES.values(), *DISTANCES.values()]:
        want = [reference(x, y) for x, y in pairs]
        np.testing.assert_allclose(ours(a, b, backend="cpu"), want, rtol=0, atol=SIM_TOL)
    want = [ref.jaccard(x, y) for x, y in pairs]
    np.testing.assert_allclose(gc.jaccard(a, b, backend="cpu"), want, rtol=0, atol=SIM_TOL)


# ---------------------------------------------------------------------------------------------
# Kernel bodies called directly: early-exit bounds, scratch sizing, shared buffers
# ---------------------------------------------------------------------------------------------


def _cp(s: str) -> np.ndarray:
    return np.array([ord(c) for c in s], dtype=np.uint32)


@pytest.fixture(scope="module")
def bodies():
    return {
        name: cpu(getattr(ks, name))
        for name in ("jaro", "jaro_winkler", "levenshtein", "damerau_levenshtein", "jaccard")
    }


@pytest.mark.parametrize("metric", list(DISTANCES))
def test_early_exit_bounds(all_pairs, bodies, metric):
    body = bodies[metric]
    _, scorer, _ = DISTANCES[metric]
    pairs = all_pairs["names"][:800] + all_pairs["long"][:90] + all_pairs["small_alphabet"][:300]
    max_len = max(max(len(x), len(y)) for x, y in pairs)
    scratch = np.full(ks.scratch_ints_needed(max_len), -7, np.int32)
    for x, y in pairs:
        ax, ay = _cp(x), _cp(y)
        exact = scorer(x, y)
        for bound in (0, 1, 2, 3, 5, 8, exact - 1, exact, exact + 1):
            got = body(ax, 0, len(ax), ay, 0, len(ay), bound, scratch)
            assert got == ref.bounded(exact, bound), (x, y, bound, got)
        assert body(ax, 0, len(ax), ay, 0, len(ay), -1, scratch) == exact


@pytest.mark.parametrize("winkler", [False, True])
def test_jaro_set_bound_bounds_rapidfuzz(all_pairs, winkler):
    """The cheap bound the pipeline uses to skip matching is never below the true similarity,
    on every group (incl. non-ASCII, where code points collide mod 128), and is tight enough
    to reject a good part of the name pairs at Splink's thresholds."""
    from gpulink.kernels import compare as kc

    set_bound = cpu(kc.jaro_set_bound)
    exact = JaroWinkler.similarity if winkler else Jaro.similarity
    below = total = 0
    for group, pairs in all_pairs.items():
        for x, y in pairs:
            if not x or not y:
                continue
            ax, ay = _cp(x), _cp(y)
            offsets = np.array([0, len(ax), len(ax) + len(ay)])
            sets = kc.char_set_words(np.concatenate([ax, ay]), offsets)
            upper = set_bound(sets, 0, 4, ax, 0, len(ax), ay, 0, len(ay), winkler)
            assert upper + 1e-12 >= exact(x, y), (group, x, y, upper, exact(x, y))
            if group == "names":
                total += 1
                below += upper < 0.8
    assert below > 0.2 * total  # half the name pairs are true variants


@pytest.mark.parametrize("metric", list(DISTANCES))
def test_score_cutoff_through_the_api(all_pairs, metric):
    a, b = _split(all_pairs["names"] + all_pairs["long"])
    ours, scorer, _ = DISTANCES[metric]
    for cutoff in (0, 2, 4):
        got = ours(a, b, score_cutoff=cutoff, backend="cpu")
        want = cpdist(a, b, scorer=scorer, score_cutoff=cutoff, workers=1, dtype=np.int64)
        np.testing.assert_array_equal(got, want)


def test_bodies_on_one_shared_buffer_with_offsets(bodies):
    """``a`` and ``b`` may be the same buffer; strings live at arbitrary offsets."""
    words = ["", "martha", "marhta", "日本語", "dwayne", "x" * 70, "duane", "y" + "x" * 69]
    buf = _cp("".join(words))
    starts = np.cumsum([0] + [len(w) for w in words])
    scratch = np.zeros(ks.scratch_ints_needed(70), np.int32)
    oracles = {
        "jaro": Jaro.similarity,
        "jaro_winkler": JaroWinkler.similarity,
        "levenshtein": Levenshtein.distance,
        "damerau_levenshtein": DamerauLevenshtein.distance,
        "jaccard": ref.jaccard,
    }
    for i, x in enumerate(words):
        for j, y in enumerate(words):
            s = (buf, starts[i], starts[i + 1], buf, starts[j], starts[j + 1])
            for name, oracle in oracles.items():
                args = (*s, -1, scratch) if "lev" in name else (*s, scratch)
                got, want = bodies[name](*args), oracle(x, y)
                assert got == want or (math.isnan(got) and math.isnan(want)), (name, x, y)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_scratch_ints_needed_is_enough():
    """Run the bodies as plain Python (numpy checks every index) with exactly
    scratch_ints_needed(n) entries: an overrun raises IndexError."""
    rng = random.Random(5)
    for n in (65, 100, 130):
        x = "".join(rng.choice("abcd") for _ in range(n))
        y = "".join(rng.choice("abcd") for _ in range(n))
        ax, ay = _cp(x), _cp(y)
        scratch = np.zeros(ks.scratch_ints_needed(n), np.int32)
        assert ks.damerau_levenshtein(ax, 0, n, ay, 0, n, -1, scratch) == (
            DamerauLevenshtein.distance(x, y)
        )
        assert ks.levenshtein(ax, 0, n, ay, 0, n, -1, scratch) == Levenshtein.distance(x, y)
        assert abs(ks.jaro(ax, 0, n, ay, 0, n, scratch) - Jaro.similarity(x, y)) <= SIM_TOL
        assert ks.jaccard(ax, 0, n, ay, 0, n, scratch) == ref.jaccard(x, y)


# ---------------------------------------------------------------------------------------------
# Properties (Hypothesis): symmetry, identity, bounds, triangle inequality
# ---------------------------------------------------------------------------------------------

text = st.text(alphabet=st.sampled_from(list(UNICODE + "xyz")), max_size=80)


@settings(max_examples=300, deadline=None)
@given(x=text, y=text)
def test_properties(bodies, x, y):
    ax, ay = _cp(x), _cp(y)
    scratch = np.zeros(ks.scratch_ints_needed(max(len(x), len(y))), np.int32)
    for name in ("jaro", "jaro_winkler", "jaccard"):
        f = bodies[name]
        xy = f(ax, 0, len(ax), ay, 0, len(ay), scratch)
        yx = f(ay, 0, len(ay), ax, 0, len(ax), scratch)
        if name == "jaccard" and (not x or not y):
            assert math.isnan(xy) and math.isnan(yx)
            assert not x or f(ax, 0, len(ax), ax, 0, len(ax), scratch) == 1.0
            continue
        assert xy == yx
        assert 0.0 <= xy <= 1.0
        assert f(ax, 0, len(ax), ax, 0, len(ax), scratch) == 1.0
        if x != y and name != "jaccard":
            assert xy < 1.0
    for name in ("levenshtein", "damerau_levenshtein"):
        f = bodies[name]
        d = f(ax, 0, len(ax), ay, 0, len(ay), -1, scratch)
        assert d == f(ay, 0, len(ay), ax, 0, len(ax), -1, scratch)
        assert abs(len(x) - len(y)) <= d <= max(len(x), len(y))
        assert f(ax, 0, len(ax), ax, 0, len(ax), -1, scratch) == 0
        assert (d == 0) == (x == y)
    assert bodies["damerau_levenshtein"](ax, 0, len(ax), ay, 0, len(ay), -1, scratch) <= bodies[
        "levenshtein"
    ](ax, 0, len(ax), ay, 0, len(ay), -1, scratch)


@settings(max_examples=150, deadline=None)
@given(x=text, y=text, z=text)
def test_triangle_inequality(bodies, x, y, z):
    ax, ay, az = _cp(x), _cp(y), _cp(z)
    scratch = np.zeros(ks.scratch_ints_needed(80), np.int32)
    for name in ("levenshtein", "damerau_levenshtein"):
        f = bodies[name]
        xy = f(ax, 0, len(ax), ay, 0, len(ay), -1, scratch)
        yz = f(ay, 0, len(ay), az, 0, len(az), -1, scratch)
        xz = f(ax, 0, len(ax), az, 0, len(az), -1, scratch)
        assert xz <= xy + yz


# ---------------------------------------------------------------------------------------------
# The public API: input types, nulls, errors
# ---------------------------------------------------------------------------------------------


def test_edge_cases_documented():
    a = ["", "", "abc", "abc", None, "x", "é", "e\u0301"]
    b = ["", "abc", "", "abc", "abc", float("nan"), "e", "e"]
    jw = gc.jaro_winkler(a, b, backend="cpu")
    np.testing.assert_array_equal(jw[:4], [1.0, 0.0, 0.0, 1.0])
    assert np.isnan(jw[4]) and np.isnan(jw[5])
    assert jw[6] == 0.0  # one code point each, different
    lev = gc.levenshtein(a, b, backend="cpu")
    np.testing.assert_array_equal(lev[[0, 1, 2, 3, 6, 7]], [0, 3, 3, 0, 1, 1])
    jac = gc.jaccard(a, b, backend="cpu")
    assert np.isnan(jac[:3]).all() and jac[3] == 1.0 and jac[7] == 0.5


@pytest.mark.parametrize(
    "convert",
    [
        list,
        lambda v: np.array(v, dtype=object),
        pd.Series,
        lambda v: pd.Series(v, dtype="string"),
        lambda v: pd.Series(v, dtype="category"),
        pa.array,
        lambda v: pa.array(v, pa.string()).dictionary_encode(),
        lambda v: pa.chunked_array([v[:2], v[2:]]),
        lambda v: pa.array(v, pa.large_string()).slice(0),
    ],
)
def test_input_types(convert):
    a = ["martha", None, "日本語", "dwayne"]
    b = ["marhta", "x", "日本", None]
    got = gc.levenshtein(convert(a), convert(b), backend="cpu")
    np.testing.assert_array_equal(np.isnan(got), [False, True, False, True])
    assert got[0] == 2 and got[2] == 1


def test_numpy_unicode_and_polars_and_slices():
    a = np.array(["abc", "abd", "xyz"])
    assert gc.jaro(a, a, backend="cpu").tolist() == [1.0, 1.0, 1.0]
    sliced = pa.array(["zz", "martha", None, "dwayne"]).slice(1, 3)
    got = gc.jaro_winkler(sliced, ["marhta", "x", "duane"], backend="cpu")
    assert abs(got[0] - JaroWinkler.similarity("martha", "marhta")) <= SIM_TOL
    assert np.isnan(got[1])
    polars = pytest.importorskip("polars")
    got = gc.jaccard(polars.Series(["ab", None]), polars.Series(["ab", "c"]), backend="cpu")
    assert got[0] == 1.0 and np.isnan(got[1])


def test_empty_input_and_all_null():
    assert gc.jaro([], [], backend="cpu").shape == (0,)
    assert np.isnan(gc.jaro([None, None], [None, "a"], backend="cpu")).all()


def test_errors_name_position_and_fix():
    with pytest.raises(InputError, match=r"'a' has 2 values but 'b' has 3"):
        gc.jaro(["a", "b"], ["a", "b", "c"], backend="cpu")
    with pytest.raises(InputError, match=r"position 1: 5 \(int\)"):
        gc.levenshtein(["a", 5], ["a", "b"], backend="cpu")
    with pytest.raises(InputError, match=r"argument 'b' .*position 0"):
        gc.jaro(["a"], [b"bytes"], backend="cpu")
    with pytest.raises(InputError, match="single string"):
        gc.jaro("abc", "abd", backend="cpu")
    with pytest.raises(InputError, match="type int64"):
        gc.jaro(pa.array([1, 2]), ["a", "b"], backend="cpu")
    with pytest.raises(InputError, match="score_cutoff"):
        gc.levenshtein(["a"], ["b"], score_cutoff=-1, backend="cpu")


def test_encode_code_points():
    cp = gc.encode(["e\u0301", "", None, "😀x"])
    assert cp.chars.tolist() == [0x65, 0x301, 0x1F600, ord("x")]
    assert cp.offsets.tolist() == [0, 2, 2, 2, 4]
    assert cp.valid.tolist() == [True, True, False, True]


def test_results_do_not_depend_on_thread_count(all_pairs):
    import numba

    a, b = _split(all_pairs["unicode"] + all_pairs["long"])
    before = gc.damerau_levenshtein(a, b, backend="cpu")
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        after = gc.damerau_levenshtein(a, b, backend="cpu")
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(before, after)


# ---------------------------------------------------------------------------------------------
# Numeric bodies vs Splink's SQL run by DuckDB
# ---------------------------------------------------------------------------------------------


def test_great_circle_matches_splink_sql():
    from splink.internals.comparison_level_sql import great_circle_distance_km_sql

    rng = np.random.default_rng(3)
    n = 3000
    lat1, lat2 = rng.uniform(-90, 90, n), rng.uniform(-90, 90, n)
    lng1, lng2 = rng.uniform(-180, 180, n), rng.uniform(-180, 180, n)
    # Near-identical points, where the cosine rounds above 1 and must be clamped.
    lat2[:500] = lat1[:500] + rng.normal(0, 1e-6, 500)
    lng2[:500] = lng1[:500]
    lat2[500:600], lng2[500:600] = lat1[500:600], lng1[500:600]
    lat1[600], lng1[600], lat2[600], lng2[600] = 29.7517, -95.4054, 29.7517, -95.4054
    tbl = pa.table({"k": np.arange(n), "la": lat1, "lb": lat2, "ga": lng1, "gb": lng2})  # noqa: F841
    sql = great_circle_distance_km_sql("la", "lb", "ga", "gb")
    want = np.array(
        [r[0] for r in duckdb.connect().execute(f"select {sql} from tbl order by k").fetchall()]
    )
    body = cpu(kn.great_circle_km)
    got = np.array([body(lat1[i], lng1[i], lat2[i], lng2[i]) for i in range(n)])
    np.testing.assert_array_equal(got, want)
    refs = np.array([ref.great_circle_km(lat1[i], lng1[i], lat2[i], lng2[i]) for i in range(n)])
    np.testing.assert_array_equal(got, refs)
    assert math.isnan(body(math.nan, 0.0, 1.0, 1.0))


def test_km_threshold_compares_as_duckdb_float():
    d = np.float32(0.1)
    got = float(d) <= kn.splink_km_threshold(0.1)
    want = duckdb.connect().execute("select cast(0.1::double as float) <= 0.1").fetchone()[0]
    assert got == want is True


def test_date_difference_matches_splink_levels():
    import splink.comparison_level_library as cll

    rng = np.random.default_rng(4)
    n = 4000
    d1 = rng.integers(-40000, 40000, n)
    d2 = d1 + rng.integers(-800, 800, n)
    dates = pa.table(
        {
            "k": np.arange(n),
            "dob_l": pa.array(d1.astype("int32"), pa.date32()),
            "dob_r": pa.array(d2.astype("int32"), pa.date32()),
        }
    )
    body = cpu(kn.abs_date_difference_seconds)
    con = duckdb.connect()
    con.register("dates", dates)
    for threshold, metric in [(1, "month"), (2, "month"), (1, "year"), (30, "day"), (1.5, "year")]:
        level = cll.AbsoluteDateDifferenceLevel(
            "dob", input_is_string=False, threshold=threshold, metric=metric
        )
        sql = level.get_comparison_level("duckdb").sql_condition
        want = np.array(
            [r[0] for r in con.execute(f"select {sql} from dates order by k").fetchall()]
        )
        limit = kn.splink_time_threshold_seconds(threshold, metric)
        got = np.array([body(float(x), float(y)) <= limit for x, y in zip(d1, d2)])
        np.testing.assert_array_equal(got, want, err_msg=f"{threshold} {metric}")
    assert math.isnan(body(math.nan, 3.0))


def test_percentage_difference_matches_splink_sql():
    import splink.comparison_level_library as cll

    rng = np.random.default_rng(5)
    x = np.round(rng.normal(0, 100, 2000), 1)
    y = np.where(rng.random(2000) < 0.5, x * rng.uniform(0.8, 1.2, 2000), rng.normal(0, 100, 2000))
    x[:20] = 0.0
    y[:10] = 0.0
    tbl = pa.table({"k": np.arange(2000), "v_l": x, "v_r": y})  # noqa: F841
    body = cpu(kn.percentage_difference)
    for t in (0.05, 0.2):
        sql = cll.PercentageDifferenceLevel("v", t).get_comparison_level("duckdb").sql_condition
        want = [
            r[0] for r in duckdb.connect().execute(f"select {sql} from tbl order by k").fetchall()
        ]
        got = [bool(body(a, b) < t) for a, b in zip(x, y)]
        assert got == want
    assert cpu(kn.abs_difference)(2.5, -1.0) == 3.5


def test_list_fast_path_equals_arrow_path():
    words = ["martha", "", "日本語", "e\u0301", "😀x"]
    fast = gc.encode(words)
    slow = gc.encode(pa.array(words))
    for field in ("chars", "offsets", "valid"):
        np.testing.assert_array_equal(getattr(fast, field), getattr(slow, field))
    with pytest.raises(InputError, match="cannot be read as strings"):
        gc.encode(["ok", "\ud800"], arg="a", func="jaro")


def test_pattern_table_path_equals_scan_path(all_pairs, bodies):
    """On the CPU, Jaro (wide windows) and Levenshtein read a per-pattern table of match masks
    in scratch when scratch has room for it, and compare characters when it has not: both give
    rapidfuzz's value to the bit, whatever the scratch held before (here -7 everywhere), and
    whether or not the pattern has a code point beyond the table's 256."""
    pairs = all_pairs["ascii"] + all_pairs["unicode"] + all_pairs["long"] + all_pairs["names"]
    pairs += [("café crème", "crème café"), ("zoëāb", "zoāëb"), ("ÿÿab" * 5, "ÿab" * 6)]
    # U+0161 and U+0261 share their low byte with "a": beyond the table they match nothing
    pairs += [("abcdefgh", "\u0161bcdefgh"), ("xyzabcab", "xyz\u0261bc\u0161b")]
    jw, lev = bodies["jaro_winkler"], bodies["levenshtein"]
    for x, y in pairs:
        ax, ay = _cp(x), _cp(y)
        need = ks.scratch_ints_needed(max(len(x), len(y)))
        small = np.full(need, -7, np.int32)  # no table when need < PATTERN_TABLE_INTS
        large = np.full(max(need, ks.PATTERN_TABLE_INTS), -7, np.int32)
        with_table = jw(ax, 0, len(ax), ay, 0, len(ay), large)
        assert (
            with_table == jw(ax, 0, len(ax), ay, 0, len(ay), small) == JaroWinkler.similarity(x, y)
        ), (x, y)
        with_table = lev(ax, 0, len(ax), ay, 0, len(ay), -1, large)
        assert (
            with_table
            == lev(ax, 0, len(ax), ay, 0, len(ay), -1, small)
            == Levenshtein.distance(x, y)
        ), (x, y)
