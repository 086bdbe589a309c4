"""Settings: validation, gamma numbering, weights, TF info, JSON round trips, Splink interop."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

import gpulink.comparison_level_library as cll
import gpulink.comparison_library as cl
from gpulink.errors import SettingsError
from gpulink.kernels import program as P
from gpulink.settings import (
    LEVEL_NOT_OBSERVED_TEXT,
    Settings,
    SettingsCreator,
    compile_program,
)

splink = pytest.importorskip("splink")
scl = pytest.importorskip("splink.comparison_library")
scll = pytest.importorskip("splink.comparison_level_library")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _model(**kw) -> SettingsCreator:
    base = dict(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.ForenameSurnameComparison("first_name", "surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=["l.first_name = r.first_name", "l.dob = r.dob"],
        probability_two_random_records_match=0.002,
    )
    base.update(kw)
    return SettingsCreator(**base)


def _splink_linker(settings_dict):
    if not (DATA / "fake_1000.csv").exists():
        pytest.skip(f"reference data not found at {DATA}")
    import pandas as pd
    from splink import DuckDBAPI, Linker

    df = pd.read_csv(DATA / "fake_1000.csv", dtype=str)
    df["unique_id"] = df["unique_id"].astype(int)
    return Linker(DuckDBAPI().register(df), settings_dict, log_level=logging.WARNING)


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------


def test_gamma_numbering_and_defaults_match_splink():
    s = _model().get_settings()
    for comp in s.comparisons:
        n = comp.num_levels
        assert [
            lvl.comparison_vector_value for lvl in comp.levels if not lvl.is_null_level
        ] == list(range(n - 1, -1, -1))
        assert all(lvl.comparison_vector_value == -1 for lvl in comp.levels if lvl.is_null_level)
    # Splink's default m / u start values per level
    sc = scl.DateOfBirthComparison("dob", input_is_string=True).get_comparison("duckdb")
    ours = s.get_comparison("dob")
    for theirs, mine in zip(sc.comparison_levels, ours.levels):
        if theirs.is_null_level:
            continue
        assert mine.m == pytest.approx(theirs.m_probability, rel=1e-15)
        assert mine.u == pytest.approx(theirs.u_probability, rel=1e-15)
        assert mine.match_weight == pytest.approx(theirs._match_weight, rel=1e-12)


def test_weights_bayes_factors_and_null_level():
    comp = cl.LevenshteinAtThresholds("name", [1]).configure(
        m_probabilities=[0.7, 0.2, 0.1], u_probabilities=[0.01, 0.09, 0.0]
    )
    s = SettingsCreator("dedupe_only", [comp]).get_settings()
    c = s.comparisons[0]
    w = c.match_weights()
    assert w[0] == 0.0  # null level
    assert w[3] == pytest.approx(math.log2(0.7 / 0.01))
    # u = 0: Splink clamps at 1e-300 for the weight, the Bayes factor is infinite
    else_level = c.level_for_gamma(0)
    assert else_level.bayes_factor == math.inf
    assert else_level.match_weight == pytest.approx(math.log2(0.1 / 1e-300))
    assert c.level_for_gamma(-1).log2_bayes_factor == 0.0
    assert s.log2_prior_odds == pytest.approx(math.log2(0.0001 / 0.9999))


def test_tf_info_finds_u_of_exact_match_level_as_splink_does():
    fs = cl.ForenameSurnameComparison("first_name", "surname")
    custom = cl.CustomComparison(
        [
            cll.NullLevel("name"),
            cll.ExactMatchLevel("name"),
            cll.JaroWinklerLevel("name", 0.9).configure(
                tf_adjustment_column="name", tf_minimum_u_value=0.001
            ),
            cll.LevenshteinLevel("name", 2).configure(
                tf_adjustment_column="name",
                tf_adjustment_weight=0.5,
                disable_tf_exact_match_detection=True,
            ),
            cll.ElseLevel(),
        ],
        "name",
    )
    m = [0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02]
    u = [0.001, 0.002, 0.01, 0.02, 0.03, 0.04, 0.897]
    fs.configure(m_probabilities=m, u_probabilities=u)
    custom.configure(m_probabilities=[0.6, 0.2, 0.1, 0.1], u_probabilities=[0.01, 0.05, 0.14, 0.8])
    s = SettingsCreator("dedupe_only", [fs, custom]).get_settings()

    # Splink's own answer, from its dialected objects
    sd = SettingsCreator("dedupe_only", [fs, custom]).get_settings().to_splink_dict()
    linker_settings = splink.SettingsCreator.from_path_or_dict(sd).get_settings("duckdb")
    for ours, theirs in zip(s.comparisons, linker_settings.comparisons):
        infos = {i.comparison_vector_value: i for i in ours.tf_levels()}
        for lvl in theirs.comparison_levels:
            if not lvl._has_tf_adjustments:
                assert lvl.comparison_vector_value not in infos
                continue
            info = infos[lvl.comparison_vector_value]
            assert info.u_exact == lvl._u_probability_corresponding_to_exact_match(
                theirs.comparison_levels
            )
            assert info.column == lvl._tf_adjustment_input_column_name
            assert info.tf_adjustment_weight == lvl._tf_adjustment_weight
            assert info.tf_minimum_u_value == lvl._tf_minimum_u_value
    assert s.tf_columns() == ["surname", "first_name", "name"]


def test_tf_without_exact_match_level_is_an_error():
    comp = cl.CustomComparison(
        [cll.JaroWinklerLevel("name", 0.9).configure(tf_adjustment_column="name"), cll.ElseLevel()],
        "name",
    )
    with pytest.raises(SettingsError, match="no level is an exact match"):
        SettingsCreator("dedupe_only", [comp]).get_settings()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(link_type="dedupe"), "link_type 'dedupe' is not known"),
        (
            dict(comparisons=[cl.ExactMatch("a"), cl.LevenshteinAtThresholds("a")]),
            "output_column_name 'a'",
        ),
        (dict(probability_two_random_records_match=0.0), "strictly between 0 and 1"),
        (dict(probability_two_random_records_match=1.5), "strictly between 0 and 1"),
        (dict(max_iterations=0), "max_iterations"),
        (dict(em_convergence=-1), "em_convergence"),
    ],
)
def test_settings_errors(kwargs, match):
    with pytest.raises(SettingsError, match=match):
        _model(**kwargs).get_settings()


def test_dict_errors():
    good = _model().get_settings().to_splink_dict()
    bad = json.loads(json.dumps(good))
    bad["comparisons"][0]["comparison_levels"][1]["m_probability"] = 1.5
    with pytest.raises(SettingsError, match=r"m_probability = 1.5 is outside \[0, 1\]"):
        Settings.from_dict(bad)
    bad = dict(good, colour="blue")
    with pytest.raises(SettingsError, match="unknown settings key"):
        Settings.from_dict(bad)
    with pytest.raises(SettingsError, match="not valid JSON"):
        Settings.from_json("{not json")
    with pytest.raises(SettingsError, match="does not exist"):
        Settings.from_json("/nonexistent/model.json")
    bad = json.loads(json.dumps(good))
    bad["comparisons"][0]["comparison_levels"].insert(0, {"sql_condition": "ELSE"})
    with pytest.raises(SettingsError, match="ELSE level must be the last"):
        Settings.from_dict(bad)


def test_numpy_scalars_are_accepted_and_saved_as_python_numbers():
    s = _model(
        probability_two_random_records_match=np.float32(0.25),
        max_iterations=np.int64(5),
        em_convergence=np.float64(0.001),
        retain_matching_columns=np.bool_(False),
    ).get_settings()
    d = json.loads(s.to_json())
    assert d["probability_two_random_records_match"] == 0.25
    assert (d["max_iterations"], d["em_convergence"]) == (5, 0.001)
    assert d["retain_matching_columns"] is False
    assert type(s.max_iterations) is int


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(probability_two_random_records_match=True), "strictly between 0 and 1"),
        (dict(max_iterations=True), "max_iterations = True must be an int"),
        (dict(max_iterations=2.5), "max_iterations = 2.5 must be an int"),
        (dict(em_convergence=float("nan")), "em_convergence = nan must be a number > 0"),
        (dict(retain_matching_columns="no"), "retain_matching_columns = 'no' must be true or"),
        (dict(retain_intermediate_calculation_columns=1), "must be true or false"),
    ],
)
def test_setting_value_errors(kwargs, match):
    with pytest.raises(SettingsError, match=match):
        _model(**kwargs).get_settings()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(unique_id_column_name=5), "unique_id_column_name = 5 must be a column name"),
        (dict(source_dataset_column_name=""), "source_dataset_column_name = '' must be a"),
        (dict(match_weight_column_prefix=None), "match_weight_column_prefix = None must be"),
        (dict(linker_uid=5), "linker_uid = 5 must be a string"),
    ],
)
def test_name_settings_must_be_text(kwargs, match):
    with pytest.raises(SettingsError, match=match):
        _model(**kwargs).get_settings()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(additional_columns_to_retain="cluster"), r"write \['cluster'\]"),
        (dict(additional_columns_to_retain=[3]), "has 3, which is not a column name"),
        (dict(blocking_rules_to_generate_predictions="l.a = r.a"), r"write \[rule\]"),
    ],
)
def test_a_bare_value_where_a_list_belongs(kwargs, match):
    # Splink iterates the string's characters and fails later, on a column named 'c'
    with pytest.raises(SettingsError, match=match):
        _model(**kwargs).get_settings()


def _level_dict_model(**level) -> dict:
    return {
        "link_type": "dedupe_only",
        "comparisons": [
            {
                "output_column_name": "city",
                "comparison_levels": [
                    {
                        "sql_condition": '"city_l" IS NULL OR "city_r" IS NULL',
                        "is_null_level": True,
                    },
                    {"sql_condition": '"city_l" = "city_r"', **level},
                    {"sql_condition": "ELSE"},
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    "level,match",
    [
        (dict(tf_adjustment_column="city", tf_adjustment_weight="x"), "tf_adjustment_weight must"),
        (dict(tf_adjustment_column="city", tf_minimum_u_value="x"), "tf_minimum_u_value must"),
        (
            dict(tf_adjustment_column="city", tf_minimum_u_value=5),
            r"tf_minimum_u_value = 5 is outside",
        ),
        (dict(tf_adjustment_column="city", tf_adjustment_weight=float("nan")), "weight must be"),
        (dict(is_null_level="false"), "is_null_level must be true or false, got 'false'"),
        (dict(fix_m_probability="yes"), "fix_m_probability must be true or false"),
        (dict(label_for_charts=5), "label_for_charts must be text"),
    ],
)
def test_level_field_errors_name_the_field(level, match):
    with pytest.raises(SettingsError, match=match):
        Settings.from_dict(_level_dict_model(**level))


def test_tf_minimum_u_value_in_range_is_kept():
    s = Settings.from_dict(_level_dict_model(tf_adjustment_column="city", tf_minimum_u_value=0.001))
    assert s.comparisons[0].tf_levels()[0].tf_minimum_u_value == 0.001


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda g: g.__setitem__("format_version", "2"), "format_version must be an integer"),
        (lambda g: g.__setitem__("format_version", None), "format_version must be an integer"),
        (lambda g: g.__setitem__("format_version", 99), "newer than this gpulink reads"),
        (lambda g: g.__setitem__("training_history", "x"), "training_history must be a list"),
        (lambda g: g.__setitem__("levels_not_observed", {}), "levels_not_observed must be a"),
        (lambda g: g.__setitem__("levels_not_observed", ["x"]), "levels_not_observed has an"),
    ],
)
def test_edited_gpulink_section_errors(edit, match):
    d = _model().get_settings().to_dict()
    edit(d["gpulink"])
    with pytest.raises(SettingsError, match=match):
        Settings.from_dict(d)


def test_gpulink_section_must_be_an_object():
    d = dict(_model().get_settings().to_dict(), gpulink=[1])
    with pytest.raises(SettingsError, match="'gpulink' section must be a JSON object, got list"):
        Settings.from_dict(d)


def test_unreadable_model_files(tmp_path):
    binary = tmp_path / "model.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SettingsError, match="is not UTF-8 text"):
        Settings.from_json(binary)
    with pytest.raises(SettingsError, match="is a directory"):
        Settings.from_json(tmp_path)
    with pytest.raises(SettingsError, match="is a directory"):
        _model().get_settings().save_model_to_json(tmp_path)


def test_column_kind_conflict_is_an_error():
    comps = [
        cl.AbsoluteDifferenceAtThresholds("x", [1]),
        cl.JaroWinklerAtThresholds("x").configure(),
    ]
    comps[1] = cl.CustomComparison([cll.JaroWinklerLevel("x", 0.9), cll.ElseLevel()], "x2")
    with pytest.raises(SettingsError, match="used as number and as string"):
        SettingsCreator("dedupe_only", comps).get_settings()


# ---------------------------------------------------------------------------------------------
# compile_program
# ---------------------------------------------------------------------------------------------


def test_compile_program_layout():
    s = _model().get_settings()
    p = compile_program(s)
    assert p.comparison_names == [c.output_column_name for c in s.comparisons]
    n_levels = sum(len(c.levels) for c in s.comparisons)
    assert p.level_start.size == n_levels + 1 and p.level_gamma.size == n_levels
    assert p.comparison_start.tolist()[-1] == n_levels
    assert p.level_start[-1] == p.program.size
    # leaves are referenced once each, in order
    leaves = [op for op in p.program.tolist() if op >= 0]
    assert leaves == list(range(p.leaf_kind.size))
    # slots: per comparison, one per (metric, columns); never shared across comparisons
    for c in range(p.n_comparisons):
        lv = range(p.comparison_start[c], p.comparison_start[c + 1])
        ks = {
            int(op)
            for v in lv
            for op in p.program[p.level_start[v] : p.level_start[v + 1]]
            if op >= 0
        }
        keyed = {}
        for k in ks:
            if p.leaf_metric[k] >= 0:
                key = (int(p.leaf_kind[k]), int(p.leaf_col[k]), int(p.leaf_col2[k]))
                keyed.setdefault(key, set()).add(int(p.leaf_metric[k]))
        assert all(len(v) == 1 for v in keyed.values())
        assert len({next(iter(v)) for v in keyed.values()}) == len(keyed)
    assert p.n_slots == len({int(m) for m in p.leaf_metric if m >= 0})
    # forename/surname: JW on each name at 2 thresholds -> 2 slots, AND-ed
    fs = s.comparisons[1]
    assert fs.output_column_name == "first_name_surname"
    assert set(s.column_expressions()) >= {"first_name", "surname", "dob", "city", "email"}
    assert s.column_kinds()["try_strptime(dob, '%Y-%m-%d')"] == "timestamp"
    assert s.column_kinds()["first_name"] == "string"
    assert "nullif(regexp_extract(email, '^[^@]+'), '')" in s.column_expressions()


def test_compile_postfix_of_nested_level():
    lvl = cll.Or(
        cll.And(cll.ExactMatchLevel("a"), cll.Not(cll.LevenshteinLevel("b", 1))),
        cll.NullLevel("c"),
    )
    s = SettingsCreator(
        "dedupe_only", [cl.CustomComparison([lvl, cll.ElseLevel()], "abc")]
    ).get_settings()
    p = compile_program(s)
    first = p.program[p.level_start[0] : p.level_start[1]].tolist()
    assert first == [0, 1, P.OP_NOT, P.OP_AND, 2, P.OP_OR]
    assert p.leaf_kind[:3].tolist() == [P.LEAF_EXACT, P.LEAF_LEVENSHTEIN_LE, P.LEAF_NULL]


def test_compile_rejects_too_deep_levels():
    lvl = cll.ExactMatchLevel("a0")
    for i in range(1, P.MAX_STACK + 2):
        # alternate AND / OR so that nothing flattens: each nesting needs one more stack slot
        merge = cll.And if i % 2 else cll.Or
        lvl = merge(cll.ExactMatchLevel(f"a{i}"), lvl)
    s = SettingsCreator(
        "dedupe_only", [cl.CustomComparison([lvl, cll.ElseLevel()], "deep")]
    ).get_settings()
    with pytest.raises(SettingsError, match="nests"):
        compile_program(s)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def test_json_round_trip(tmp_path):
    s = _model().get_settings()
    s.training_history.append({"step": "estimate_u", "max_pairs": 1000, "seed": 1})
    path = tmp_path / "model.json"
    s.save_model_to_json(path)
    back = Settings.from_json(path)
    assert back.to_dict() == s.to_dict()
    assert back.training_history == s.training_history
    assert Settings.from_json(s.to_json()).to_dict() == s.to_dict()
    with pytest.raises(SettingsError, match="already exists"):
        s.save_model_to_json(path)
    s.save_model_to_json(path, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp files left
    assert json.loads(path.read_text())["gpulink"]["format_version"] == 1


def test_blocking_rule_objects_are_serialised():
    class Rule:  # stands in for gpulink.blocking's rule object
        sql = "l.dob = r.dob"
        salting_partitions = None

    s = _model(blocking_rules_to_generate_predictions=[Rule(), "l.city = r.city"]).get_settings()
    d = s.to_dict()
    assert d["blocking_rules_to_generate_predictions"] == [
        {"blocking_rule": "l.dob = r.dob", "sql_dialect": "duckdb"},
        {"blocking_rule": "l.city = r.city", "sql_dialect": "duckdb"},
    ]
    assert "blocking_rules" not in d["gpulink"]  # the Splink key is the only copy


def test_block_on_rules_round_trip(tmp_path):
    blocking = pytest.importorskip("gpulink.blocking")
    rules = [
        blocking.block_on("first_name", "substr(dob, 1, 4)"),
        blocking.block_on("surname", salting_partitions=4),
        "l.city = r.city",
    ]
    s = _model(blocking_rules_to_generate_predictions=rules).get_settings()
    back = Settings.from_json(s.to_json())
    assert blocking.to_blocking_rules(back.blocking_rules) == blocking.to_blocking_rules(rules)
    assert back.blocking_rules[1].salting_partitions == 4
    assert back.blocking_rules[2] == "l.city = r.city"
    assert back.to_dict() == s.to_dict()


def _edited(d: dict, edit) -> dict:
    d = json.loads(json.dumps(d))
    edit(d)
    return d


def test_edited_splink_keys_of_a_model_file_take_effect():
    blocking = pytest.importorskip("gpulink.blocking")
    s = _model(blocking_rules_to_generate_predictions=[blocking.block_on("city")]).get_settings()
    s.comparisons[1].levels[1].m_probability = LEVEL_NOT_OBSERVED_TEXT
    saved = s.to_dict()
    # a file written by gpulink 0.x also kept the rules in its own section: they must not win
    saved["gpulink"]["blocking_rules"] = saved["blocking_rules_to_generate_predictions"]

    def new_rule(d):
        d["blocking_rules_to_generate_predictions"][0]["blocking_rule"] = "l.dob = r.dob"

    back = Settings.from_dict(_edited(saved, new_rule))
    assert blocking.to_blocking_rules(back.blocking_rules) == [blocking.block_on("dob")]

    # an m given in the Splink keys wins over the section's "not observed"
    def set_m(d):
        d["comparisons"][1]["comparison_levels"][1]["m_probability"] = 0.7

    assert Settings.from_dict(saved).comparisons[1].levels[1].m_probability == (
        LEVEL_NOT_OBSERVED_TEXT
    )
    assert Settings.from_dict(_edited(saved, set_m)).comparisons[1].levels[1].m == 0.7

    # a level whose condition was edited is no longer the level the section speaks of
    def new_condition(d):
        d["comparisons"][1]["comparison_levels"][1]["sql_condition"] = '"city_l" = "city_r"'

    lvl = Settings.from_dict(_edited(saved, new_condition)).comparisons[1].levels[1]
    assert lvl.m_probability is None and lvl.m == lvl.default_m_probability


def test_gpulink_model_loads_in_splink_with_same_levels():
    s = _model().get_settings()
    linker = _splink_linker(s.to_splink_dict())
    theirs = linker.misc.save_model_to_json()
    ours = s.to_splink_dict()
    assert (
        theirs["probability_two_random_records_match"]
        == ours["probability_two_random_records_match"]
    )
    assert [b["blocking_rule"] for b in theirs["blocking_rules_to_generate_predictions"]] == [
        b["blocking_rule"] for b in ours["blocking_rules_to_generate_predictions"]
    ]
    for a, b in zip(theirs["comparisons"], ours["comparisons"]):
        assert a["output_column_name"] == b["output_column_name"]
        assert a["comparison_levels"] == b["comparison_levels"]


def test_trained_splink_model_loads_in_gpulink(tmp_path):
    settings = splink.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.NameComparison("first_name"),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[
            splink.block_on("first_name"),
            splink.block_on("surname"),
        ],
    )
    linker = _splink_linker(settings)
    linker.training.estimate_probability_two_random_records_match(
        [splink.block_on("first_name", "surname")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e4, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(splink.block_on("dob"))
    path = tmp_path / "splink_model.json"
    linker.misc.save_model_to_json(str(path))
    s = Settings.from_json(path)

    theirs = linker._settings_obj
    assert s.probability_two_random_records_match == theirs._probability_two_random_records_match
    for ours_c, their_c in zip(s.comparisons, theirs.comparisons):
        for mine, lvl in zip(ours_c.levels, their_c.comparison_levels):
            assert mine.comparison_vector_value == lvl.comparison_vector_value
            assert mine.label_for_charts == lvl.label_for_charts
            if lvl.is_null_level:
                assert mine.match_weight == 0.0
                continue
            assert mine.m == lvl.m_probability
            assert mine.u == lvl.u_probability
            assert mine.match_weight == lvl._match_weight
        infos = {i.comparison_vector_value: i for i in ours_c.tf_levels()}
        for lvl in their_c.comparison_levels:
            if lvl._has_tf_adjustments:
                u_exact = lvl._u_probability_corresponding_to_exact_match(their_c.comparison_levels)
                assert infos[lvl.comparison_vector_value].u_exact == u_exact
    # and back out, unchanged where Splink wrote it
    written = json.loads(path.read_text())
    ours = s.to_splink_dict()
    for a, b in zip(written["comparisons"], ours["comparisons"]):
        assert a["comparison_levels"] == b["comparison_levels"]
    assert compile_program(s).n_comparisons == 4


def test_level_not_observed_reads_as_splink():
    d = {
        "link_type": "dedupe_only",
        "comparisons": [
            {
                "output_column_name": "a",
                "comparison_levels": [
                    {"sql_condition": '"a_l" IS NULL OR "a_r" IS NULL', "is_null_level": True},
                    {
                        "sql_condition": '"a_l" = "a_r"',
                        "m_probability": LEVEL_NOT_OBSERVED_TEXT,
                        "u_probability": 0.01,
                    },
                    {"sql_condition": "ELSE", "m_probability": 0.5, "u_probability": 0.99},
                ],
            }
        ],
    }
    s = Settings.from_dict(d)
    theirs = splink.SettingsCreator.from_path_or_dict(d).get_settings("duckdb")
    assert s.comparisons[0].levels[1].m == theirs.comparisons[0].comparison_levels[1].m_probability
    assert (
        s.comparisons[0].levels[1].match_weight
        == theirs.comparisons[0].comparison_levels[1]._match_weight
    )


def test_settings_accepts_all_input_forms(tmp_path):
    s = _model().get_settings()
    d = s.to_dict()
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    for form in (s, _model(), d, json.dumps(d), str(path), path):
        assert Settings.from_any(form).to_splink_dict() == s.to_splink_dict()
    np.testing.assert_array_equal(
        compile_program(Settings.from_any(path)).leaf_threshold, compile_program(s).leaf_threshold
    )
