"""Linker API behaviour: clear errors for user mistakes, Splink call shapes, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import gpulink as gl
import gpulink.comparison_library as cl
from gpulink.backend import resolve_backend
from gpulink.datasets import synthetic_people
from gpulink.errors import BackendUnavailable, GpulinkError, InputError, SettingsError


@pytest.fixture(scope="module")
def people():
    people = synthetic_people(400, seed=4)
    return people.to_pandas() if hasattr(people, "to_pandas") else people


def settings(**overrides):
    kwargs = dict(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name"),
            cl.ExactMatch("dob"),
            cl.ExactMatch("surname"),
        ],
        blocking_rules_to_generate_predictions=[gl.block_on("surname")],
    )
    kwargs.update(overrides)
    return gl.SettingsCreator(**kwargs)


def test_missing_column_names_the_column(people):
    with pytest.raises(InputError, match="no_such_col"):
        gl.Linker(people, settings(comparisons=[cl.ExactMatch("no_such_col")]), backend="cpu")


def test_missing_blocking_column_names_the_column(people):
    s = settings(blocking_rules_to_generate_predictions=[gl.block_on("postcodez")])
    with pytest.raises(InputError, match="postcodez"):
        gl.Linker(people, s, backend="cpu")


def test_additional_columns_to_retain_are_checked_and_kept(people):
    with pytest.raises(InputError, match="additional_columns_to_retain names column 'nope'"):
        gl.Linker(people, settings(additional_columns_to_retain=["nope"]), backend="cpu")
    with pytest.raises(SettingsError, match="must be a list of column names"):
        gl.Linker(people, settings(additional_columns_to_retain="city"), backend="cpu")
    kept = gl.Linker(people, settings(additional_columns_to_retain=["city"]), backend="cpu")
    columns = kept.inference.predict().to_pandas().columns
    assert {"city_l", "city_r"} <= set(columns)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold_match_probability": 1.5},
        {"threshold_match_probability": -0.1},
        {"threshold_match_probability": 0.5, "threshold_match_weight": 2.0},
    ],
)
def test_bad_threshold(people, kwargs):
    linker = gl.Linker(people, settings(), backend="cpu")
    with pytest.raises(SettingsError):
        linker.inference.predict(**kwargs)


def test_no_blocking_rules(people):
    linker = gl.Linker(people, settings(blocking_rules_to_generate_predictions=[]), backend="cpu")
    with pytest.raises(SettingsError, match="blocking"):
        linker.inference.predict()


@pytest.mark.parametrize("without_tf", [True, False])
def test_em_rule_with_no_pairs(people, without_tf):
    df = people.copy()
    df["solo"] = [f"v{i}" for i in range(len(df))]  # every value unique: the rule pairs nothing
    s = settings(
        comparisons=[
            cl.ExactMatch("first_name").configure(term_frequency_adjustments=True),
            cl.ExactMatch("dob"),
        ]
    )
    linker = gl.Linker(df, s, backend="cpu")
    with pytest.raises(InputError, match="no record pairs"):
        linker.training.estimate_parameters_using_expectation_maximisation(
            gl.block_on("solo"), estimate_without_term_frequencies=without_tf
        )


def test_em_rule_covering_every_comparison(people):
    linker = gl.Linker(people, settings(comparisons=[cl.ExactMatch("surname")]), backend="cpu")
    with pytest.raises(SettingsError, match="surname"):
        linker.training.estimate_parameters_using_expectation_maximisation(gl.block_on("surname"))


def test_gpu_backend_without_gpu(people):
    try:
        resolve_backend("gpu")
    except BackendUnavailable:
        pass
    else:
        pytest.skip("a GPU is usable here")
    with pytest.raises(BackendUnavailable):
        gl.Linker(people, settings(), backend="gpu")
    assert issubclass(BackendUnavailable, GpulinkError)


def test_splink_db_api_as_third_positional_argument(people):
    splink = pytest.importorskip("splink")
    linker = gl.Linker(people, settings(), splink.DuckDBAPI())
    assert linker.backend.name in ("cpu", "gpu")
    out = linker.inference.predict(threshold_match_probability=0.5)
    assert len(out.to_pandas()) > 0


def test_u_reproducible_for_a_seed(people):
    def u_values(seed):
        linker = gl.Linker(people, settings(), backend="cpu")
        linker.training.estimate_u_using_random_sampling(max_pairs=5_000, seed=seed)
        return [
            lvl.u for c in linker.settings.comparisons for lvl in c.levels if not lvl.is_null_level
        ]

    a, b, c = u_values(7), u_values(7), u_values(8)
    assert a == b
    assert a != c  # 5,000 of 79,800 pairs: another seed draws other pairs


def test_u_is_the_same_whatever_the_batch_size(people, monkeypatch):
    from gpulink import training

    def trained(batch):
        monkeypatch.setattr(training, "U_PAIRS_PER_BATCH", batch)
        linker = gl.Linker(people, settings(), backend="cpu")
        linker.training.estimate_u_using_random_sampling(max_pairs=20_000, seed=3)
        u = [lvl.u for c in linker.settings.comparisons for lvl in c.levels]
        return u, linker.settings.training_history[-1]["pairs"]

    # one batch per chunk, then batches of a few records' pairs (and of single records)
    assert trained(1 << 30) == trained(1_000) == trained(1)


def test_training_history_in_model_json(people, tmp_path):
    linker = gl.Linker(people, settings(), backend="cpu")
    linker.training.estimate_probability_two_random_records_match(
        [gl.block_on("first_name", "surname", "dob")], recall=0.8
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=5_000, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(gl.block_on("dob"))
    path = tmp_path / "model.json"
    linker.misc.save_model_to_json(str(path))
    model = json.loads(path.read_text())
    steps = [h["step"] for h in model["gpulink"]["training_history"]]
    assert steps == [
        "estimate_probability_two_random_records_match",
        "estimate_u_using_random_sampling",
        "estimate_parameters_using_expectation_maximisation",
    ]
    em_entry = model["gpulink"]["training_history"][-1]
    assert "dob" in em_entry["blocking_rule"] and em_entry["comparisons_left_out"] == ["dob"]
    # reloading keeps the history, and the reloaded model predicts the same
    again = gl.Linker(people, str(path), backend="cpu")
    assert [h["step"] for h in again.settings.training_history] == steps
    w1 = linker.inference.predict().to_pandas()["match_weight"].to_numpy()
    w2 = again.inference.predict().to_pandas()["match_weight"].to_numpy()
    np.testing.assert_array_equal(w1, w2)
    # the Splink-compatible file carries no gpulink section
    compat = linker.misc.save_model_to_json(str(tmp_path / "splink.json"), splink_compatible=True)
    assert "gpulink" not in compat


def test_edited_blocking_rule_in_model_json_is_used(people, tmp_path):
    linker = gl.Linker(people, settings(), backend="cpu")
    path = tmp_path / "model.json"
    model = linker.misc.save_model_to_json(str(path))
    model["blocking_rules_to_generate_predictions"] = [
        {"blocking_rule": "l.dob = r.dob", "sql_dialect": "duckdb"}
    ]
    path.write_text(json.dumps(model))
    pairs = gl.Linker(people, str(path), backend="cpu").inference.predict().to_pandas()
    expected = (
        gl.Linker(
            people,
            settings(blocking_rules_to_generate_predictions=[gl.block_on("dob")]),
            backend="cpu",
        )
        .inference.predict()
        .to_pandas()
    )
    assert len(pairs) == len(expected) > 0
    assert (pairs["dob_l"] == pairs["dob_r"]).all()
    assert (pairs["surname_l"] != pairs["surname_r"]).any()


def test_save_model_refuses_to_overwrite(people, tmp_path):
    linker = gl.Linker(people, settings(), backend="cpu")
    path = tmp_path / "m.json"
    linker.misc.save_model_to_json(str(path))
    with pytest.raises(GpulinkError):
        linker.misc.save_model_to_json(str(path))
    linker.misc.save_model_to_json(str(path), overwrite=True)


def test_cluster_needs_a_prediction(people):
    linker = gl.Linker(people, settings(), backend="cpu")
    with pytest.raises(InputError, match="predict"):
        linker.clustering.cluster_pairwise_predictions_at_threshold(None, 0.9)


def test_input_table_aliases_count(people):
    s = settings(link_type="link_only")
    with pytest.raises(InputError, match="input_table_aliases"):
        gl.Linker(
            [people.iloc[:100], people.iloc[100:]], s, backend="cpu", input_table_aliases=["a"]
        )


def test_column_blocked_on_in_its_own_type_is_compared_as_string():
    """A numeric column first encoded as numbers (λ's blocking rule) and then read by
    Jaro-Winkler is compared as text, as if the rule had not run first."""
    from rapidfuzz.distance import JaroWinkler

    codes = [12345, 12346, 99999, 12345]
    df = pd.DataFrame({"unique_id": [1, 2, 3, 4], "code": codes, "x": ["a"] * 4})
    s = gl.SettingsCreator(
        "dedupe_only",
        [cl.JaroWinklerAtThresholds("code", [0.9])],
        blocking_rules_to_generate_predictions=[gl.block_on("x")],
        retain_intermediate_calculation_columns=True,
        probability_two_random_records_match=0.1,
    )
    linker = gl.Linker(df, s, backend="cpu")
    linker.training.estimate_probability_two_random_records_match([gl.block_on("code")], recall=0.9)
    got = linker.inference.predict().to_pandas()
    for row in got.itertuples():
        a, b = str(codes[row.unique_id_l - 1]), str(codes[row.unique_id_r - 1])
        want = 2 if a == b else (1 if JaroWinkler.similarity(a, b) >= 0.9 else 0)
        assert row.gamma_code == want, (a, b)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_pairs=0),
        dict(max_pairs=-5),
        dict(max_pairs=float("nan")),
        dict(max_pairs=float("inf")),
        dict(max_pairs="1e6"),
        dict(max_pairs=True),
        dict(max_pairs=1e4, seed="a"),
        dict(max_pairs=1e4, seed=-1),
        dict(max_pairs=1e4, seed=1.5),
    ],
)
def test_u_arguments_are_checked_before_anything_changes(people, kwargs):
    linker = gl.Linker(people, settings(), backend="cpu")
    before = linker.settings.to_dict()
    with pytest.raises(SettingsError, match="max_pairs|seed"):
        linker.training.estimate_u_using_random_sampling(**kwargs)
    assert linker.settings.to_dict() == before


def test_u_accepts_numpy_numbers(people):
    linker = gl.Linker(people, settings(), backend="cpu")
    linker.training.estimate_u_using_random_sampling(max_pairs=np.float64(1e4), seed=np.int64(2))
    assert linker.settings.training_history[-1]["seed"] == 2


@pytest.mark.parametrize("max_pairs", [0, float("inf"), "x"])
def test_em_max_pairs_is_checked(people, max_pairs):
    linker = gl.Linker(people, settings(), backend="cpu")
    with pytest.raises(SettingsError, match="max_pairs"):
        linker.training.estimate_parameters_using_expectation_maximisation(
            gl.block_on("dob"), max_pairs=max_pairs
        )


def test_lambda_from_rules_admitting_no_pairs_is_an_error_and_changes_nothing(people):
    data = people.assign(k=np.arange(len(people)))  # unique: the rule pairs nothing
    linker = gl.Linker(data, settings(), backend="cpu")
    before = linker.settings.probability_two_random_records_match
    with pytest.raises(InputError, match="admit 0 of .* would be 0"):
        linker.training.estimate_probability_two_random_records_match(
            [gl.block_on("k")], recall=0.7
        )
    assert linker.settings.probability_two_random_records_match == before
    linker.inference.predict()  # still a usable model


@pytest.mark.parametrize("rows", [0, 1])
def test_lambda_on_fewer_than_two_records_is_an_input_error(people, rows):
    linker = gl.Linker(people.head(rows), settings(), backend="cpu")
    with pytest.raises(InputError, match="needs record pairs"):
        linker.training.estimate_probability_two_random_records_match(
            [gl.block_on("dob")], recall=0.8
        )


@pytest.mark.parametrize("chunk_pairs", [0, -1, 1.5, True, "10"])
def test_predict_chunk_pairs_is_checked(people, chunk_pairs):
    linker = gl.Linker(people, settings(), backend="cpu")
    with pytest.raises(SettingsError, match="chunk_pairs"):
        linker.inference.predict(chunk_pairs=chunk_pairs)


def test_predict_chunk_size_does_not_change_the_pairs(people):
    linker = gl.Linker(people, settings(), backend="cpu")
    whole = linker.inference.predict().to_pandas()
    small = linker.inference.predict(chunk_pairs=np.int64(7)).to_pandas()
    pd.testing.assert_frame_equal(whole, small)


def test_clustering_refuses_another_linkers_predictions(people):
    mine = gl.Linker(people, settings(), backend="cpu")
    other = gl.Linker(people.sample(frac=1.0, random_state=1), settings(), backend="cpu")
    pairs = other.inference.predict()
    with pytest.raises(InputError, match="from this linker"):
        mine.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.5)
    assert other.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.5).to_arrow()


def test_repeated_input_table_aliases_are_an_error(people):
    s = settings(link_type="link_only")
    with pytest.raises(InputError, match="repeats a name"):
        gl.Linker([people, people], s, backend="cpu", input_table_aliases=["a", "a"])


def test_splink_5_linker_keywords(people):
    import logging

    log = logging.getLogger("gpulink")
    level = log.level
    try:
        linker = gl.Linker(people, settings(), log_level=logging.WARNING, validate_settings=True)
        assert log.level == logging.WARNING
        assert len(linker.inference.predict().to_pandas()) > 0
    finally:
        log.setLevel(level)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(threshold_match_probability="0.5"),
        dict(threshold_match_probability=float("nan")),
        dict(threshold_match_weight="x"),
        dict(threshold_match_weight=float("nan")),
    ],
)
def test_thresholds_must_be_numbers(people, kwargs):
    linker = gl.Linker(people, settings(), backend="cpu")
    with pytest.raises(SettingsError, match="must be a number"):
        linker.inference.predict(**kwargs)
    pairs = linker.inference.predict()
    with pytest.raises(SettingsError, match="must be a number"):
        linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, **kwargs)
