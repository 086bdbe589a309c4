"""``linker.inference.predict_within`` / ``predict_between`` against Splink 5 + DuckDB.

One model, trained by Splink on fake_1000 with term-frequency adjustments, its model JSON loaded
into gpulink. Splink gets the input's TF tables registered (``compute_tf_table``), gpulink takes
them from its input. New records: fake_1000 rows under new ids, some with nulls, some with values
the input does not hold. Same pairs, every column, values to 1e-9, at several thresholds.
"""

from __future__ import annotations

import copy
import logging

import pytest

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

from splink import DuckDBAPI, block_on  # noqa: E402
from test_realtime import _settings, _splink_linker, _without_tf, assert_same_output  # noqa: E402

import gpulink as gl  # noqa: E402

THRESHOLDS = [None, {"threshold_match_probability": 0.5}, {"threshold_match_weight": -3.0}]


@pytest.fixture(scope="module")
def trained_model(fake_1000):
    sl = _splink_linker(fake_1000, _settings().create_settings_dict("duckdb"))
    sl.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=2)
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    sl.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    return sl.misc.save_model_to_json()


@pytest.fixture(scope="module")
def new_records(fake_1000):
    new = fake_1000.sample(60, random_state=4).copy()
    new["unique_id"] = new["unique_id"] + 10_000
    rows = new.index[:10]
    new.loc[rows[:4], "city"] = None
    new.loc[rows[2:6], "email"] = None
    new.loc[rows[6:], "first_name"] = ["Zzyzx", "Zzyzx", "Qwerty", None]  # unseen values
    return new.reset_index(drop=True)


@pytest.fixture(scope="module", params=["tf", "no_tf"])
def both(request, fake_1000, trained_model):
    model = trained_model if request.param == "tf" else _without_tf(trained_model)
    db = DuckDBAPI()
    sl = splink.Linker(db.register(fake_1000), copy.deepcopy(model), log_level=logging.ERROR)
    gk = gl.Linker(fake_1000, copy.deepcopy(model), backend="cpu")
    for col in gk.settings.tf_columns():  # the input's frequencies, as gpulink uses
        sl.table_management.compute_tf_table(col)
    return db, sl, gk


def _sorted(df):
    return df.sort_values(["unique_id_l", "unique_id_r"]).reset_index(drop=True)


@pytest.mark.parametrize("kw", THRESHOLDS)
def test_predict_between_equals_splink(both, fake_1000, new_records, kw):
    db, sl, gk = both
    kw = kw or {}
    s = sl.inference.predict_between(db.register(fake_1000), db.register(new_records), **kw)
    g = gk.inference.predict_between(fake_1000, new_records, **kw).to_pandas()
    s = _sorted(s.as_pandas_dataframe())
    assert len(s) > 0
    assert_same_output(s, _sorted(g))
    assert set(g["unique_id_r"]) <= set(new_records["unique_id"])


@pytest.mark.parametrize("kw", THRESHOLDS)
def test_predict_within_equals_splink(both, new_records, fake_1000, kw):
    db, sl, gk = both
    kw = kw or {}
    batch = pd.concat([new_records, fake_1000.head(200)], ignore_index=True)
    s = _sorted(sl.inference.predict_within(db.register(batch), **kw).as_pandas_dataframe())
    g = _sorted(gk.inference.predict_within(batch, **kw).to_pandas())
    assert len(s) > 0
    assert_same_output(s, g)


def test_given_blocking_rules_and_link_type(both, fake_1000, new_records):
    db, sl, gk = both
    rules = [block_on("surname"), block_on("dob", "city")]
    s = sl.inference.predict_between(
        db.register(new_records), db.register(fake_1000),
        blocking_rules_to_generate_predictions=rules, threshold_match_weight=-5,
    )  # fmt: skip
    g = gk.inference.predict_between(
        new_records, fake_1000,
        blocking_rules_to_generate_predictions=[gl.block_on("surname"), gl.block_on("dob", "city")],
        threshold_match_weight=-5,
    )  # fmt: skip
    s = _sorted(s.as_pandas_dataframe())
    assert len(s) > 0 and set(s["match_key"]) == {"0", "1"}
    assert_same_output(s, _sorted(g.to_pandas()))


def test_pairs_only_blocked(fake_1000, trained_model, new_records):
    gk = gl.Linker(fake_1000, copy.deepcopy(trained_model), backend="cpu")
    g = gk.inference.predict_between(fake_1000, new_records).to_pandas()
    both_names = (
        fake_1000[["unique_id", "first_name"]]
        .merge(new_records[["unique_id", "first_name"]], on="first_name")
        .dropna()
    )
    assert len(g) < len(fake_1000) * len(new_records)
    found = set(zip(g["unique_id_l"], g["unique_id_r"]))
    assert set(zip(both_names["unique_id_x"], both_names["unique_id_y"])) <= found


def test_bad_warning_mode(fake_1000, trained_model):
    gk = gl.Linker(fake_1000, copy.deepcopy(trained_model), backend="cpu")
    with pytest.raises(ValueError, match="warning_mode"):
        gk.inference.predict_within(fake_1000, warning_mode="loud")
