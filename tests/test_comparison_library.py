"""The comparison and level libraries against Splink's, level by level and pair by pair.

Oracles: Splink 5's own library objects (levels, order, labels, SQL, TF, m/u, names) and DuckDB
running Splink's actual SQL conditions on sample pairs, compared with a pure-Python evaluator of
the compiled ComparisonProgram (rapidfuzz for the string metrics).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

import gpulink.comparison_level_library as gcll
import gpulink.comparison_library as gcl
from gpulink.errors import SettingsError
from gpulink.kernels import program as P
from gpulink.settings import SettingsCreator, compile_program

scl = pytest.importorskip("splink.comparison_library")
scll = pytest.importorskip("splink.comparison_level_library")
duckdb = pytest.importorskip("duckdb")
rapidfuzz = pytest.importorskip("rapidfuzz")
from rapidfuzz.distance import (  # noqa: E402
    DamerauLevenshtein,
    Jaro,
    JaroWinkler,
    Levenshtein,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# (name, args, kwargs): every library comparison, with non-default options too
CASES = [
    ("ExactMatch", ("city",), {}),
    ("ExactMatch", ("lower(city)",), {}),
    ("LevenshteinAtThresholds", ("first_name",), {}),
    ("LevenshteinAtThresholds", ("surname", [1, 3]), {}),
    ("DamerauLevenshteinAtThresholds", ("surname", 2), {}),
    ("JaroAtThresholds", ("first_name",), {}),
    ("JaroWinklerAtThresholds", ("substr(surname, 1, 4)", [0.95, 0.8]), {}),
    ("JaccardAtThresholds", ("first_name",), {}),
    (
        "AbsoluteDateDifferenceAtThresholds",
        ("dob",),
        {"input_is_string": True, "metrics": ["day", "month", "year"], "thresholds": [1, 2, 5]},
    ),
    (
        "AbsoluteDateDifferenceAtThresholds",
        ("dob_date",),
        {"input_is_string": False, "metrics": ["day", "year"], "thresholds": [10, 1]},
    ),
    (
        "AbsoluteTimeDifferenceAtThresholds",
        ("ts",),
        {"input_is_string": True, "metrics": ["hour", "day"], "thresholds": [6, 2.5]},
    ),
    ("DistanceInKMAtThresholds", ("lat", "lng", [5, 50, 500]), {}),
    ("ArrayIntersectAtSizes", ("arr", [2, 1]), {}),
    ("NameComparison", ("first_name",), {}),
    (
        "NameComparison",
        ("surname",),
        {"jaro_winkler_thresholds": [0.9, 0.8], "dmeta_col_name": "arr"},
    ),
    ("ForenameSurnameComparison", ("first_name", "surname"), {}),
    (
        "ForenameSurnameComparison",
        ("first_name", "surname"),
        {"forename_surname_concat_col_name": "full_name"},
    ),
    ("DateOfBirthComparison", ("dob",), {"input_is_string": True}),
    ("DateOfBirthComparison", ("dob_date",), {"input_is_string": False}),
    (
        "DateOfBirthComparison",
        ("dob",),
        {
            "input_is_string": True,
            "invalid_dates_as_null": False,
            "datetime_metrics": ["year"],
            "datetime_thresholds": [3],
        },
    ),
    ("PostcodeComparison", ("postcode",), {}),
    ("PostcodeComparison", ("postcode",), {"invalid_postcodes_as_null": True}),
    (
        "PostcodeComparison",
        ("postcode",),
        {"lat_col": "lat", "long_col": "lng", "km_thresholds": [2, 20]},
    ),
    ("EmailComparison", ("email",), {}),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)]


def _pair(name, args, kwargs):
    return getattr(scl, name)(*args, **kwargs), getattr(gcl, name)(*args, **kwargs)


def _gpulink_dict(comparison):
    s = SettingsCreator("dedupe_only", [comparison]).get_settings()
    return s.comparisons[0].to_dict()


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=IDS)
def test_comparison_equals_splink(name, args, kwargs):
    s, g = _pair(name, args, kwargs)
    assert _gpulink_dict(g) == s.get_comparison("duckdb").as_dict()


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=IDS)
def test_configure_equals_splink(name, args, kwargs):
    s, g = _pair(name, args, kwargs)
    n = g.num_non_null_levels
    m = [round(0.9 / (i + 1), 6) for i in range(n)]
    u = [round(0.001 * (i + 1), 6) for i in range(n)]
    s.configure(term_frequency_adjustments=True, m_probabilities=m, u_probabilities=u)
    g.configure(term_frequency_adjustments=True, m_probabilities=m, u_probabilities=u)
    assert _gpulink_dict(g) == s.get_comparison("duckdb").as_dict()


def test_absolute_difference_at_thresholds_is_built_from_splink_levels():
    # Splink 5 has no AbsoluteDifferenceAtThresholds; ours must equal the same levels by hand
    g = gcl.AbsoluteDifferenceAtThresholds("age", [1, 5])
    s = scl.CustomComparison(
        [
            scll.NullLevel("age"),
            scll.ExactMatchLevel("age"),
            scll.AbsoluteDifferenceLevel("age", 1),
            scll.AbsoluteDifferenceLevel("age", 5),
            scll.ElseLevel(),
        ],
        output_column_name="age",
        comparison_description="AbsoluteDifferenceAtThresholds",
    )
    expected = s.get_comparison("duckdb").as_dict()
    # Splink's CustomComparison drops the description it is given (always "CustomComparison");
    # gpulink keeps it
    expected["comparison_description"] = "AbsoluteDifferenceAtThresholds"
    assert _gpulink_dict(g) == expected


LEVEL_CASES = [
    ("NullLevel", ("x",), {}),
    ("NullLevel", ("x",), {"valid_string_pattern": "^[0-9]+$"}),
    ("ElseLevel", (), {}),
    ("ExactMatchLevel", ("x",), {"term_frequency_adjustments": True}),
    ("ExactMatchLevel", ("substr(x, 1, 2)",), {}),
    ("LevenshteinLevel", ("x", 2), {}),
    ("DamerauLevenshteinLevel", ("x", 1), {}),
    ("JaroLevel", ("x", 0.8), {}),
    ("JaroWinklerLevel", ("x", 0.9), {}),
    ("JaccardLevel", ("x", 0.5), {}),
    ("AbsoluteDifferenceLevel", ("n", 2.5), {}),
    ("PercentageDifferenceLevel", ("n", 0.2), {}),
    (
        "AbsoluteDateDifferenceLevel",
        ("d",),
        {"input_is_string": True, "threshold": 3, "metric": "month", "datetime_format": "%d/%m/%Y"},
    ),
    (
        "AbsoluteTimeDifferenceLevel",
        ("t",),
        {"input_is_string": False, "threshold": 90, "metric": "second"},
    ),
    ("DistanceInKMLevel", ("lat", "lng", 10), {}),
    ("DistanceInKMLevel", ("lat", "lng", 10), {"not_null": True}),
    ("ArrayIntersectLevel", ("arr",), {}),
    ("ColumnsReversedLevel", ("a", "b"), {}),
    ("ColumnsReversedLevel", ("a", "b"), {"symmetrical": True}),
    ("LiteralMatchLevel", ("x", "m", "string"), {"side_of_comparison": "left"}),
]


@pytest.mark.parametrize(
    "name,args,kwargs", LEVEL_CASES, ids=[c[0] + str(i) for i, c in enumerate(LEVEL_CASES)]
)
def test_level_equals_splink(name, args, kwargs):
    s = getattr(scll, name)(*args, **kwargs)
    g = getattr(gcll, name)(*args, **kwargs)
    s.configure(m_probability=0.7, label_for_charts=None)
    g.configure(m_probability=0.7, label_for_charts=None)
    expected = s.create_level_dict("duckdb")
    if not expected.get("is_null_level"):
        expected.pop("is_null_level", None)
    got = g.create_level_dict()
    assert got == expected


def test_composition_equals_splink():
    def build(lib):
        return lib.Or(
            lib.And(lib.ExactMatchLevel("a"), lib.Not(lib.LevenshteinLevel("b", 1))),
            lib.And(lib.NullLevel("a"), lib.NullLevel("b")),
        )

    sd = scl.CustomComparison([build(scll), scll.ElseLevel()], "ab").get_comparison("duckdb")
    gd = _gpulink_dict(gcl.CustomComparison([build(gcll), gcll.ElseLevel()], "ab"))
    assert gd == sd.as_dict()
    assert build(gcll).is_null_level == build(scll).is_null_level
    assert gcll.Not(gcll.NullLevel("a")).is_null_level is False


# ---------------------------------------------------------------------------------------------
# Pure-Python reference evaluator of a ComparisonProgram
# ---------------------------------------------------------------------------------------------


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _great_circle_km(lat_l, lat_r, lng_l, lng_r) -> float:
    r = math.radians
    x = math.sin(r(lat_l)) * math.sin(r(lat_r)) + math.cos(r(lat_l)) * math.cos(
        r(lat_r)
    ) * math.cos(r(lng_r - lng_l))
    x = 1.0 if x > 1 else -1.0 if x < -1 else x
    # Splink casts the distance to FLOAT (float32) before comparing
    return float(np.float32(math.acos(x) * 6371))


def _leaf_value(program, k, vl, vr):
    """Three-valued result of leaf k: True, False or None (UNKNOWN)."""
    kind = int(program.leaf_kind[k])
    c1, c2 = int(program.leaf_col[k]), int(program.leaf_col2[k])
    t = float(program.leaf_threshold[k])
    if kind == P.LEAF_ELSE:
        return True
    name1 = program.columns[c1]
    name2 = program.columns[c2] if c2 >= 0 else None
    if kind == P.LEAF_NULL:
        cols = [name1] + ([name2] if name2 else [])
        return any(vl[c] is None or vr[c] is None for c in cols)
    if kind == P.LEAF_EXACT_AS_STRING:
        a, b = vl[name1], vr[name2]
        return None if a is None or b is None else str(a) == str(b)
    if kind == P.LEAF_DISTANCE_KM_LE:
        vals = [vl[name1], vr[name1], vl[name2], vr[name2]]
        if any(v is None for v in vals):
            return None
        return _great_circle_km(*vals) <= t
    a, b = vl[name1], vr[name1]
    if a is None or b is None:
        return None
    if kind == P.LEAF_EXACT:
        return a == b
    if kind == P.LEAF_JARO_GE:
        return Jaro.similarity(a, b) >= t
    if kind == P.LEAF_JARO_WINKLER_GE:
        return JaroWinkler.similarity(a, b, prefix_weight=0.1) >= t
    if kind == P.LEAF_LEVENSHTEIN_LE:
        return Levenshtein.distance(a, b) <= t
    if kind == P.LEAF_DAMERAU_LE:
        return DamerauLevenshtein.distance(a, b) <= t
    if kind == P.LEAF_JACCARD_GE:
        return _jaccard(a, b) >= t
    if kind == P.LEAF_ABS_DIFF_LE:
        return abs(a - b) <= t
    if kind == P.LEAF_PERCENT_DIFF_LE:
        denominator = b if b > a else a
        if denominator == 0:
            return None  # DuckDB: x / 0 is NULL
        return abs(a - b) / denominator < t
    if kind == P.LEAF_ARRAY_INTERSECT_GE:
        return len(set(a) & set(b)) >= t
    raise AssertionError(f"unknown leaf kind {kind}")


def _run_level(program, v, vl, vr):
    stack = []
    for op in program.program[program.level_start[v] : program.level_start[v + 1]]:
        op = int(op)
        if op >= P.OP_LEAF:
            stack.append(_leaf_value(program, op - P.OP_LEAF, vl, vr))
        elif op == P.OP_NOT:
            x = stack.pop()
            stack.append(None if x is None else not x)
        else:
            b, a = stack.pop(), stack.pop()
            if op == P.OP_AND:
                stack.append(
                    False if a is False or b is False else (None if None in (a, b) else True)
                )
            else:
                stack.append(
                    True if a is True or b is True else (None if None in (a, b) else False)
                )
    assert len(stack) == 1
    return stack[0]


def evaluate_program_reference(program, values_l: dict, values_r: dict) -> list[int]:
    """Gamma of each comparison for one pair; values_*: canonical column -> value (None: null)."""
    gammas = []
    for c in range(program.n_comparisons):
        gamma = None
        for v in range(program.comparison_start[c], program.comparison_start[c + 1]):
            if _run_level(program, v, values_l, values_r) is True:
                gamma = int(program.level_gamma[v])
                break
        assert gamma is not None, "a comparison must end with an ELSE level"
        gammas.append(gamma)
    return gammas


def test_reference_evaluator_three_valued_logic():
    level = gcll.Not(gcll.JaroWinklerLevel("x", 0.9))
    s = SettingsCreator("dedupe_only", [gcl.CustomComparison([level, gcll.ElseLevel()], "x")])
    prog = compile_program(s.get_settings())
    # NOT(UNKNOWN) is UNKNOWN, so a null pair falls through to ELSE, as in SQL
    assert evaluate_program_reference(prog, {"x": None}, {"x": "abc"}) == [0]
    assert evaluate_program_reference(prog, {"x": "abc"}, {"x": "xyz"}) == [1]


# ---------------------------------------------------------------------------------------------
# DuckDB oracle: Splink's SQL on sample pairs == our program on the same pairs
# ---------------------------------------------------------------------------------------------


def _sample_records():
    if not (DATA / "fake_1000.csv").exists():
        pytest.skip(f"reference data not found at {DATA}; see /work/shared/data/README.md")
    con = duckdb.connect()
    rng = random.Random(7)
    rows = con.execute(
        f"select unique_id, first_name, surname, dob, city, email from read_csv_auto('{DATA / 'fake_1000.csv'}', all_varchar=true) order by unique_id"
    ).fetchall()
    postcodes = ["SW1A 1AA", "SW1A 2BB", "SW1B 1AA", "SE1 9ZZ", "SE10 0AB", "M1 1AE", "bad", None]
    records = []
    for i, (uid, fn, sn, dob, city, email) in enumerate(rows[:240]):
        records.append(
            {
                "unique_id": int(uid),
                "first_name": fn,
                "surname": sn if i % 17 else fn,  # some reversed / equal names
                "full_name": None if fn is None or sn is None else f"{fn} {sn}",
                "dob": dob if i % 23 else "not a date",
                "city": city,
                "email": email,
                "postcode": rng.choice(postcodes),
                "lat": None if i % 19 == 0 else 51.0 + rng.random() * 3,
                "lng": None if i % 29 == 0 else -2.0 + rng.random() * 3,
                "age": None if i % 13 == 0 else float(rng.randint(18, 30)),
                "arr": None if i % 11 == 0 else sorted(rng.sample(range(8), rng.randint(0, 3))),
                "ts": None
                if i % 31 == 0
                else f"2020-01-{rng.randint(1, 9):02d}T{rng.randint(0, 23):02d}:00:00Z",
            }
        )
    return con, records


def _oracle_pairs(records, n_pairs=400):
    rng = random.Random(11)
    pairs = []
    # pairs within the same true person (first 240 rows hold several records per cluster) and
    # random pairs
    for i in range(len(records) - 1):
        pairs.append((i, i + 1))
    while len(pairs) < n_pairs:
        pairs.append((rng.randrange(len(records)), rng.randrange(len(records))))
    return pairs


def test_gammas_equal_splink_sql_in_duckdb():
    con, records = _sample_records()
    import pandas as pd

    df = pd.DataFrame(records)
    con.register("raw", df)
    con.execute(
        "create table rec as select *, try_strptime(dob, '%Y-%m-%d')::date as dob_date from raw"
    )

    comparisons_s, comparisons_g = [], []
    for name, args, kwargs in CASES:
        s, g = _pair(name, args, kwargs)
        comparisons_s.append(s)
        comparisons_g.append(g)
    extra = [
        [
            gcll.NullLevel("age"),
            gcll.ExactMatchLevel("age"),
            gcll.PercentageDifferenceLevel("age", 0.1),
            gcll.AbsoluteDifferenceLevel("age", 3),
            gcll.ElseLevel(),
        ],
        [
            gcll.ColumnsReversedLevel("first_name", "surname"),
            gcll.Or(gcll.Not(gcll.JaroLevel("city", 0.8)), gcll.ExactMatchLevel("email")),
            gcll.DistanceInKMLevel("lat", "lng", 100, not_null=True),
            gcll.ElseLevel(),
        ],
    ]
    extra_s = [
        [
            scll.NullLevel("age"),
            scll.ExactMatchLevel("age"),
            scll.PercentageDifferenceLevel("age", 0.1),
            scll.AbsoluteDifferenceLevel("age", 3),
            scll.ElseLevel(),
        ],
        [
            scll.ColumnsReversedLevel("first_name", "surname"),
            scll.Or(scll.Not(scll.JaroLevel("city", 0.8)), scll.ExactMatchLevel("email")),
            scll.DistanceInKMLevel("lat", "lng", 100, not_null=True),
            scll.ElseLevel(),
        ],
    ]
    for i, (lg, ls) in enumerate(zip(extra, extra_s)):
        comparisons_g.append(gcl.CustomComparison(lg, f"custom_{i}"))
        comparisons_s.append(scl.CustomComparison(ls, f"custom_{i}"))

    # one model per comparison: several cases share an output_column_name
    models = [SettingsCreator("dedupe_only", [g]).get_settings() for g in comparisons_g]
    programs = [compile_program(m) for m in models]

    # Splink's gammas: its CASE expressions over l/r columns of each pair
    cases = []
    for k, s in enumerate(comparisons_s):
        d = s.get_comparison("duckdb").as_dict()
        counter = sum(not lvl.get("is_null_level") for lvl in d["comparison_levels"]) - 1
        whens = []
        for lvl in d["comparison_levels"]:
            gamma = -1 if lvl.get("is_null_level") else counter
            counter -= 0 if lvl.get("is_null_level") else 1
            if lvl["sql_condition"] == "ELSE":
                whens.append(f"ELSE {gamma}")
            else:
                whens.append(f"WHEN {lvl['sql_condition']} THEN {gamma}")
        cases.append(f"CASE {' '.join(whens)} END AS g{k}")
    cols = [c for c in con.execute("select * from rec limit 0").df().columns]
    select_lr = ", ".join(f'l."{c}" AS "{c}_l", r."{c}" AS "{c}_r"' for c in cols)
    pairs = _oracle_pairs(records)
    con.register("pairs", pd.DataFrame(pairs, columns=["il", "ir"]))
    con.execute("create table rec_i as select row_number() over () - 1 as i, * from rec")
    blocked = con.execute(
        f"select {select_lr} from pairs p join rec_i l on l.i = p.il join rec_i r on r.i = p.ir "
        "order by p.il, p.ir"
    ).df()
    con.register("blocked", blocked)
    expected = con.execute(f"select {', '.join(cases)} from blocked").fetchall()

    # Our gammas: each derived column computed once per record by DuckDB from its SQL
    values = []
    for model in models:
        kinds = model.column_kinds()
        vals = {}
        for canon, sql in model.column_sql().items():
            expr = f"epoch({sql})" if kinds.get(canon) == "timestamp" else sql
            vals[canon] = [
                r[0] for r in con.execute(f"select {expr} from rec_i order by i").fetchall()
            ]
        values.append(vals)
    pairs_sorted = sorted(pairs)
    mismatches = []
    for (il, ir), exp in zip(pairs_sorted, expected):
        got = []
        for program, vals in zip(programs, values):
            vl = {c: vals[c][il] for c in vals}
            vr = {c: vals[c][ir] for c in vals}
            got += evaluate_program_reference(program, vl, vr)
        if list(exp) != got:
            bad = [k for k, (a, b) in enumerate(zip(exp, got)) if a != b]
            mismatches.append(
                (
                    il,
                    ir,
                    [(models[k].comparisons[0].output_column_name, exp[k], got[k]) for k in bad],
                )
            )
    assert not mismatches, mismatches[:5]
    # the sample exercises every non-null level of every comparison at least somewhere
    seen = {(k, g) for _, exp in zip(pairs_sorted, expected) for k, g in enumerate(exp)}
    total = sum(p.level_gamma.size for p in programs)
    print(f"covered {len(seen)} of {total} levels")
    assert len(seen) > 60


# ---------------------------------------------------------------------------------------------
# Compiled leaves and errors
# ---------------------------------------------------------------------------------------------


def test_dob_comparison_compiles_to_expected_leaves():
    s = SettingsCreator(
        "dedupe_only", [gcl.DateOfBirthComparison("dob", input_is_string=True)]
    ).get_settings()
    p = compile_program(s)
    kinds = p.leaf_kind.tolist()
    assert kinds == [P.LEAF_NULL, P.LEAF_EXACT, P.LEAF_LEVENSHTEIN_LE] + [
        P.LEAF_ABS_DIFF_LE
    ] * 3 + [P.LEAF_ELSE]
    # thresholds in seconds, as Splink's EPOCH() SQL: 1 month, 1 year, 10 years
    assert p.leaf_threshold[3:6].tolist() == [2629800.0, 31557600.0, 315576000.0]
    # the three date levels share one metric slot
    assert len(set(p.leaf_metric[3:6].tolist())) == 1
    assert s.column_kinds()[p.columns[p.leaf_col[3]]] == "timestamp"
    assert p.columns[p.leaf_col[0]] == "try_strptime(dob, '%Y-%m-%d')"


@pytest.mark.parametrize(
    "sql",
    [
        'levenshtein("a_l", "b_r") <= 1',  # different columns
        '"a_l" IS NULL',  # one side only
        'my_udf("a_l", "a_r") > 3',
        "\"a_l\" = 'x'",
        '"a" = "a"',  # no _l/_r
        'levenshtein("a_l", "a_r") = 2',  # equality on a metric
        "(((",
    ],
)
def test_unsupported_custom_sql_raises_settings_error(sql):
    comp = gcl.CustomComparison([gcll.CustomLevel(sql), gcll.ElseLevel()], "a")
    with pytest.raises(SettingsError, match="cannot run on gpulink|cannot read"):
        SettingsCreator("dedupe_only", [comp]).get_settings()


def test_custom_sql_forms_compile():
    forms = {
        '"a_l" = "a_r"': [P.LEAF_EXACT],
        "a_l = a_r AND lower(b_l) = lower(b_r)": [P.LEAF_EXACT, P.LEAF_EXACT],
        "jaro_winkler(a_l, a_r) > 0.9": [P.LEAF_JARO_WINKLER_GE],
        "0.9 <= jaro_similarity(a_l, a_r)": [P.LEAF_JARO_GE],
        "levenshtein(a_l, a_r) < 3": [P.LEAF_LEVENSHTEIN_LE],
        "a_l <> a_r": [P.LEAF_EXACT],
    }
    for sql, kinds in forms.items():
        comp = gcl.CustomComparison([gcll.CustomLevel(sql), gcll.ElseLevel()], "a")
        p = compile_program(SettingsCreator("dedupe_only", [comp]).get_settings())
        assert p.leaf_kind.tolist()[:-1] == kinds, sql
    # strict comparisons become the next float64: exact, not approximate
    comp = gcl.CustomComparison(
        [gcll.CustomLevel("jaro_winkler(a_l, a_r) > 0.9"), gcll.ElseLevel()], "a"
    )
    p = compile_program(SettingsCreator("dedupe_only", [comp]).get_settings())
    assert p.leaf_threshold[0] == math.nextafter(0.9, 1)
    comp = gcl.CustomComparison(
        [gcll.CustomLevel("levenshtein(a_l, a_r) < 3"), gcll.ElseLevel()], "a"
    )
    p = compile_program(SettingsCreator("dedupe_only", [comp]).get_settings())
    assert p.leaf_threshold[0] < 3 and p.leaf_threshold[0] > 2.99


def test_literal_match_level_raises_with_advice():
    comp = gcl.CustomComparison(
        [gcll.LiteralMatchLevel("sex", "m", "string"), gcll.ElseLevel()], "sex"
    )
    with pytest.raises(SettingsError, match="literal"):
        SettingsCreator("dedupe_only", [comp]).get_settings()


def test_library_argument_errors():
    with pytest.raises(SettingsError, match="non-null levels"):
        gcl.ExactMatch("a").configure(m_probabilities=[0.9, 0.05, 0.05])
    with pytest.raises(SettingsError, match="between 0 and 1"):
        gcll.JaroWinklerLevel("a", 1.5)
    with pytest.raises(SettingsError, match="one metric per threshold"):
        gcl.DateOfBirthComparison(
            "dob", input_is_string=True, datetime_thresholds=[1, 2], datetime_metrics=["year"]
        )
    with pytest.raises(SettingsError, match="metric"):
        gcll.AbsoluteDateDifferenceLevel("d", input_is_string=True, threshold=1, metric="week")
    with pytest.raises(SettingsError, match="plain column"):
        gcll.ExactMatchLevel("lower(a)", term_frequency_adjustments=True)
    with pytest.raises(SettingsError, match="level object or a dict"):
        gcl.CustomComparison([42], "a").create_comparison_levels()


@pytest.mark.parametrize(
    "sql",
    [
        'jaro_winkler_similarity("a_l", "a_r") >= 1.5',
        "1.5 <= jaro_similarity(a_l, a_r)",
        'jaccard("a_l", "a_r") > -0.1',
        gcll.PercentageDifferenceLevel("a", 0.5).create_sql().replace("0.5", "1.5"),
    ],
)
def test_sql_thresholds_outside_the_metric_range_are_refused_as_the_library_does(sql):
    comp = gcl.CustomComparison([{"sql_condition": sql}, {"sql_condition": "ELSE"}], "a")
    with pytest.raises(SettingsError, match="threshold must be between 0 and 1.*got (1.5|-0.1)"):
        SettingsCreator("dedupe_only", [comp]).get_settings()


def test_numpy_numbers_are_numbers():
    thresholds = np.array([0.9, 0.7])  # numpy float64 elements; Splink takes any iterable
    ours = gcl.JaroWinklerAtThresholds("name", thresholds).create_comparison_dict()
    assert ours == gcl.JaroWinklerAtThresholds("name", [0.9, 0.7]).create_comparison_dict()
    lev = gcl.LevenshteinAtThresholds("name", [np.int64(2)]).create_comparison_dict()
    assert lev["comparison_levels"][2]["sql_condition"].endswith("<= 2")
    assert gcll.JaroWinklerLevel("name", np.float32(0.5)).create_sql().endswith(">= 0.5")
    c = gcl.ExactMatch("city").configure(m_probabilities=np.array([0.9, 0.1]))
    levels = c.create_comparison_dict()["comparison_levels"]
    assert [type(lvl.get("m_probability")) for lvl in levels[1:]] == [float, float]
    with pytest.raises(SettingsError, match="must be a number"):
        gcll.LevenshteinLevel("name", True)
    with pytest.raises(SettingsError, match="m_probabilities must be numbers"):
        gcl.ExactMatch("city").configure(m_probabilities=[True, False])


def test_splink_comparison_objects_are_accepted():
    s = SettingsCreator("dedupe_only", [scl.JaroWinklerAtThresholds("name")]).get_settings()
    g = SettingsCreator("dedupe_only", [gcl.JaroWinklerAtThresholds("name")]).get_settings()
    assert s.comparisons[0].to_dict() == g.comparisons[0].to_dict()
