"""``linker.inference.score_pair`` / ``score_pairs`` (real-time scoring) against Splink 5 + DuckDB.

Both engines get the same model: trained by Splink on fake_1000 (u by random sampling, EM),
its model JSON loaded into gpulink. Every output column, its order and its value (floats to
1e-9) must be Splink's, for matching and non-matching pairs, nulls, values the linker's input
does not hold, records that carry their own term frequencies or no unique id, with and without
term-frequency adjustments.
"""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, SettingsCreator, block_on  # noqa: E402

import gpulink as gl  # noqa: E402
from gpulink.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def records(fake_1000):
    """fake_1000's rows as dicts, NaN as None (what DuckDB reads as null from a dict)."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in fake_1000.to_dict("records")
    ]


def _settings():
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            scl.JaroWinklerAtThresholds("surname").configure(term_frequency_adjustments=True),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            scl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name"),
            block_on("substr(surname, 1, 2)", "dob"),
        ],
        additional_columns_to_retain=["cluster"],
    )


def _splink_linker(df, model):
    return splink.Linker(DuckDBAPI().register(df), copy.deepcopy(model), log_level=logging.ERROR)


@pytest.fixture(scope="module")
def trained_model(fake_1000):
    """Splink's trained model (with term-frequency adjustments), as its model JSON dict."""
    sl = _splink_linker(fake_1000, _settings().create_settings_dict("duckdb"))
    sl.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob")], recall=0.7
    )
    sl.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=2)
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    return sl.misc.save_model_to_json()


def _without_tf(model: dict) -> dict:
    model = copy.deepcopy(model)
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            level.pop("tf_adjustment_column", None)
            level.pop("tf_adjustment_weight", None)
    return model


@pytest.fixture(scope="module", params=["tf", "no_tf"])
def both(request, fake_1000, trained_model):
    model = trained_model if request.param == "tf" else _without_tf(trained_model)
    gk = gl.Linker(fake_1000, copy.deepcopy(model), backend="cpu")
    return _splink_linker(fake_1000, model), gk, request.param


def assert_same_output(s, g):
    """Same columns in the same order, same rows, same values (floats to 1e-9)."""
    assert list(g.columns) == list(s.columns)
    assert len(g) == len(s)
    for col in s.columns:
        a, b = s[col], g[col]
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            a, b = a.astype(float).to_numpy(), b.astype(float).to_numpy()
            bad = ~(np.isclose(a, b, rtol=0, atol=1e-9) | (np.isnan(a) & np.isnan(b)))
        else:
            both_null = (a.isna() & b.isna()).to_numpy()
            bad = ~((a.astype(str).to_numpy() == b.astype(str).to_numpy()) | both_null)
        assert not bad.any(), f"column {col!r}: Splink {list(a[bad])} gpulink {list(b[bad])}"


def _pairs(records):
    r = records
    unseen = {**r[1], "first_name": "Zzyzx", "surname": "Qwertyuiop", "city": "Atlantis"}
    return {
        "match": (r[0], r[1]),  # same person, city null on both sides
        "match_exact": (r[2], {**r[2], "unique_id": 5000}),  # every value equal
        "non_match": (r[0], r[500]),
        "nulls": (
            {**r[3], "email": None, "dob": None},
            {**r[4], "city": None, "first_name": None},
        ),
        "unseen_one_side": (r[0], unseen),
        "unseen_both_sides": (unseen, {**unseen, "unique_id": 7}),  # exact match, no TF
        "own_tf": (
            {**r[2], "tf_first_name": 0.25, "tf_city": None},  # tf given; a null tf given
            {**r[2], "unique_id": 9, "tf_first_name": 0.001, "tf_city": 0.5},
        ),
        "no_unique_id": (
            {k: v for k, v in r[10].items() if k != "unique_id"},
            {k: v for k, v in r[11].items() if k != "unique_id"},
        ),
    }


@pytest.mark.parametrize("found", [False, True], ids=["plain", "found_by_rules"])
@pytest.mark.parametrize(
    "case",
    [
        "match",
        "match_exact",
        "non_match",
        "nulls",
        "unseen_one_side",
        "unseen_both_sides",
        "own_tf",
        "no_unique_id",
    ],
)
def test_score_pair_as_splink(both, records, case, found):
    sl, gk, _ = both
    left, right = _pairs(records)[case]
    s = sl.inference.score_pair(left, right, include_found_by_blocking_rules=found)
    g = gk.inference.score_pair(left, right, include_found_by_blocking_rules=found)
    assert_same_output(s.as_pandas_dataframe(), g.to_pandas())


def test_score_pair_uses_term_frequencies(both, records):
    """The pairs above exercise TF: an exact first-name match adjusts with the name's TF, and a
    name the input lacks (or a null) gets no TF and no adjustment, as Splink."""
    _, gk, tf = both
    g = gk.inference.score_pair(*_pairs(records)["match_exact"]).to_pandas()
    unseen = gk.inference.score_pair(*_pairs(records)["unseen_both_sides"]).to_pandas()
    if tf == "no_tf":
        assert "tf_first_name_l" not in g.columns
        return
    assert g["tf_first_name_l"][0] > 0 and g["mw_tf_adj_first_name"][0] != 0
    assert unseen["tf_first_name_l"].isna().all() and unseen["mw_tf_adj_first_name"][0] == 0


def test_score_pairs_as_splink(both, records):
    sl, gk, _ = both
    left = [records[0], records[3], {**records[7], "city": "Atlantis"}]
    right = [records[1], records[500]]
    s = sl.inference.score_pairs(left, right, include_found_by_blocking_rules=True)
    g = gk.inference.score_pairs(left, right, include_found_by_blocking_rules=True)
    keys = ["unique_id_l", "unique_id_r"]
    s = s.as_pandas_dataframe().sort_values(keys).reset_index(drop=True)
    assert_same_output(s, g.to_pandas())  # gpulink: left-major, which is this order here


def test_score_pair_of_input_records_is_predicts_row(fake_1000, records, trained_model):
    """Two records of the input score as predict scores their pair (every shared column)."""
    gk = gl.Linker(fake_1000, copy.deepcopy(trained_model), backend="cpu")
    pairs = gk.inference.predict().to_pandas()
    for _, row in pairs.sample(20, random_state=1).iterrows():
        left, right = records[int(row["unique_id_l"])], records[int(row["unique_id_r"])]
        g = gk.inference.score_pair(left, right).to_pandas()
        for col in pairs.columns:
            if col == "match_key":
                continue
            a, b = row[col], g[col][0]
            if isinstance(a, float):
                assert (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9, col
            else:
                assert a == b or (pd.isna(a) and pd.isna(b)), col


def test_link_job_record_without_source_dataset_as_splink(fake_1000, records):
    settings = SettingsCreator(
        link_type="link_and_dedupe",
        comparisons=[
            scl.ExactMatch("first_name").configure(term_frequency_adjustments=True),
            scl.LevenshteinAtThresholds("surname", 2),
        ],
        blocking_rules_to_generate_predictions=[block_on("dob")],
    ).create_settings_dict("duckdb")
    a, b = fake_1000.iloc[:500], fake_1000.iloc[500:]
    db = DuckDBAPI()
    sl = splink.Linker(
        [db.register(a, dataset_display_name="a"), db.register(b, dataset_display_name="b")],
        copy.deepcopy(settings),
        log_level=logging.ERROR,
    )
    gk = gl.Linker([a, b], copy.deepcopy(settings), backend="cpu", input_table_aliases=["a", "b"])
    left, right = records[0], {**records[1], "source_dataset": "b"}
    s = sl.inference.score_pair(left, right, include_found_by_blocking_rules=True)
    g = gk.inference.score_pair(left, right, include_found_by_blocking_rules=True)
    assert_same_output(s.as_pandas_dataframe(), g.to_pandas())
    assert g.to_pandas()["source_dataset_l"][0] == "new_record"


def test_records_as_tables_and_nan_as_null(fake_1000, records, trained_model):
    """A one-row table, or a dict with pandas' NaN for a missing value, scores as the dict."""
    gk = gl.Linker(fake_1000, copy.deepcopy(trained_model), backend="cpu")
    expected = gk.inference.score_pair(records[0], records[1]).to_pandas()
    as_tables = gk.inference.score_pair(fake_1000.iloc[[0]], fake_1000.iloc[[1]]).to_pandas()
    with_nan = gk.inference.score_pair(*fake_1000.iloc[[0, 1]].to_dict("records")).to_pandas()
    pd.testing.assert_frame_equal(as_tables, expected)
    pd.testing.assert_frame_equal(with_nan, expected)
    alias = gk.inference.compare_two_records(records[0], records[1]).to_pandas()
    pd.testing.assert_frame_equal(alias, expected)


def test_bad_records_name_the_problem(fake_1000, records, trained_model):
    gk = gl.Linker(fake_1000, copy.deepcopy(trained_model), backend="cpu")
    with pytest.raises(TypeError, match="score_pairs"):
        gk.inference.score_pair([records[0]], records[1])
    with pytest.raises(TypeError, match="must be a dict"):
        gk.inference.score_pair(42, records[1])
    missing = {k: v for k, v in records[0].items() if k != "surname"}
    with pytest.raises(InputError, match="'surname'.*missing from the left-hand records"):
        gk.inference.score_pair(missing, records[1])
