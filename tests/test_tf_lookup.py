"""register_term_frequency_lookup against Splink 5 + DuckDB (the oracle), and its errors.

Both engines get the same model and the same user lookup (frequencies changed, some input
values missing from it, values the input lacks added): predictions must agree to 1e-9
(``tf_*`` and ``mw_tf_adj_*`` columns included), EM with term frequencies to 1e-3 (as
without a lookup), and the lookup must change the answer (so that the test can fail).
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pyarrow as pa
import pytest

import gpulink as gl

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, SettingsCreator, block_on  # noqa: E402

KEYS = ["unique_id_l", "unique_id_r"]


def _model(seed: int = 0) -> dict:
    s = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.ExactMatch("first_name").configure(term_frequency_adjustments=True),
            scl.JaroWinklerAtThresholds("surname").configure(term_frequency_adjustments=True),
            scl.ExactMatch("dob"),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("dob")],
        retain_intermediate_calculation_columns=True,
        max_iterations=50,
        em_convergence=1e-7,
    )
    d = s.create_settings_dict("duckdb")
    rng = np.random.default_rng(seed)
    for comparison in d["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        m = np.sort(rng.dirichlet(np.ones(len(levels))))[::-1]
        u = np.clip(np.sort(rng.dirichlet(np.full(len(levels), 0.5))), 1e-4, None)
        u /= u.sum()
        for level, mm, uu in zip(levels, m, u):
            level["m_probability"], level["u_probability"] = float(mm), float(uu)
    d["probability_two_random_records_match"] = 0.01
    return d


def _lookup(df, column: str, seed: int = 1):
    """The column's own frequencies, scaled, a third of its values dropped, two added."""
    counts = df[column].value_counts()
    tf = counts / counts.sum()
    rng = np.random.default_rng(seed)
    keep = rng.random(len(tf)) > 1 / 3
    values = list(tf.index[keep]) + ["Zebedee", "Quixote"]
    freqs = list(np.minimum(tf.to_numpy()[keep] * rng.uniform(0.2, 5, keep.sum()), 1)) + [0.01, 0.5]
    return pd.DataFrame({column: values, f"tf_{column}": freqs})


def _linkers(df, model):
    db = DuckDBAPI()
    sl = splink.Linker(db.register(df), copy.deepcopy(model), log_level=logging.ERROR)
    gk = gl.Linker(df, copy.deepcopy(model), backend="cpu")
    return db, sl, gk


def _assert_same(s, g, atol=1e-9):
    merged = s.merge(g, on=KEYS, suffixes=("_s", "_g"), how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and len(merged) == len(s) == len(g) > 0
    floats = [c for c in s.columns if c == "match_weight" or c.startswith(("tf_", "mw_"))]
    assert any(c.startswith("tf_first_name") for c in floats)
    for col in floats:
        a = merged[f"{col}_s"].astype(float).to_numpy()
        b = merged[f"{col}_g"].astype(float).to_numpy()
        ok = np.isclose(a, b, rtol=0, atol=atol) | (np.isnan(a) & np.isnan(b))
        assert ok.all(), f"{col} differs on {int((~ok).sum())} pairs"


def test_registered_lookup_predictions_are_splinks(fake_1000):
    model = _model()
    db, sl, gk = _linkers(fake_1000, model)
    before = gk.inference.predict().to_pandas()
    for column in ("first_name", "surname"):
        lookup = _lookup(fake_1000, column)
        sl.table_management.register_term_frequency_lookup(db.register(lookup), column)
        gk.table_management.register_term_frequency_lookup(lookup, column)
    s = sl.inference.predict().as_pandas_dataframe()
    g = gk.inference.predict().to_pandas()
    _assert_same(s, g)
    # values the lookup lacks have no term frequency (null), and the weights changed
    assert g["tf_first_name_l"].isna().sum() > 0
    changed = g.merge(before, on=KEYS)
    assert (np.abs(changed["match_weight_x"] - changed["match_weight_y"]) > 1e-6).any()
    # compute_tf_table gives the registered table, as Splink's cache does
    tf = gk.table_management.compute_tf_table("first_name").to_pandas()
    assert sorted(tf["first_name"]) == sorted(_lookup(fake_1000, "first_name")["first_name"])


def test_registered_lookup_is_used_in_training_as_in_splink(fake_1000):
    model = _model(seed=2)
    db, sl, gk = _linkers(fake_1000, model)
    plain = gl.Linker(fake_1000, copy.deepcopy(model), backend="cpu")
    lookup = _lookup(fake_1000, "first_name", seed=3)
    sl.table_management.register_term_frequency_lookup(db.register(lookup), "first_name")
    gk.table_management.register_term_frequency_lookup(pa.Table.from_pandas(lookup), "first_name")
    for linker in (sl, gk, plain):
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("dob"), estimate_without_term_frequencies=False
        )
    s_model, g_model = sl.misc.save_model_to_json(), gk.misc.save_model_to_json()
    p_model = plain.misc.save_model_to_json()

    def m_values(model):
        return [lv["m_probability"] for c in model["comparisons"] for lv in c["comparison_levels"]
                if not lv.get("is_null_level")]  # fmt: skip

    assert np.allclose(m_values(s_model), m_values(g_model), rtol=0, atol=1e-3)
    assert np.abs(np.subtract(m_values(p_model), m_values(g_model))).max() > 1e-3
    _assert_same(sl.inference.predict().as_pandas_dataframe(), gk.inference.predict().to_pandas(),
                 atol=1e-2)  # fmt: skip


def test_register_again_replaces_and_invalidate_cache_drops(fake_1000):
    model = _model()
    gk = gl.Linker(fake_1000, copy.deepcopy(model), backend="cpu")
    plain = gk.inference.predict().to_pandas()
    gk.table_management.register_term_frequency_lookup(
        _lookup(fake_1000, "first_name"), "first_name"
    )
    first = gk.inference.predict().to_pandas()
    again = _lookup(fake_1000, "first_name", seed=9)
    gk.table_management.register_term_frequency_lookup(again, "first_name")
    second = gk.inference.predict().to_pandas()
    fresh = gl.Linker(fake_1000, copy.deepcopy(model), backend="cpu")
    fresh.table_management.register_term_frequency_lookup(again, "first_name")
    pd.testing.assert_frame_equal(second, fresh.inference.predict().to_pandas(), check_exact=True)
    assert not np.allclose(first["match_weight"], second["match_weight"])
    gk.table_management.invalidate_cache()
    pd.testing.assert_frame_equal(gk.inference.predict().to_pandas(), plain, check_exact=True)


@pytest.mark.parametrize(
    "lookup, column, match",
    [
        (
            {"first_name": ["a"], "tf": [0.1]},
            "first_name",
            r"lacks the column\(s\) \['tf_first_name'\]",
        ),
        (
            {"first_name": ["a", "a"], "tf_first_name": [0.1, 0.2]},
            "first_name",
            "more than once.*'a'",
        ),
        ({"first_name": ["a"], "tf_first_name": [0.0]}, "first_name", r"outside \(0, 1\]"),
        ({"first_name": ["a"], "tf_first_name": [1.5]}, "first_name", r"outside \(0, 1\]"),
        ({"first_name": ["a"], "tf_first_name": ["x"]}, "first_name", "tf_first_name"),
        ({"nope": ["a"], "tf_nope": [0.1]}, "nope", "column 'nope' is not in the input"),
        ({"unique_id": ["x"], "tf_unique_id": [0.1]}, "unique_id", "cannot be read as"),
    ],
)
def test_bad_lookups_raise_and_change_nothing(fake_1000, lookup, column, match):
    gk = gl.Linker(fake_1000, copy.deepcopy(_model()), backend="cpu")
    before = gk.inference.predict().to_pandas()
    with pytest.raises(gl.InputError, match=match):
        gk.table_management.register_term_frequency_lookup(pa.table(lookup), column)
    pd.testing.assert_frame_equal(gk.inference.predict().to_pandas(), before, check_exact=True)


def test_lookup_rows_with_nulls_are_values_without_frequency(fake_1000):
    lookup = _lookup(fake_1000, "first_name")
    with_nulls = pd.concat(
        [lookup, pd.DataFrame({"first_name": [None, "Zorro"], "tf_first_name": [0.2, None]})]
    )
    a = gl.Linker(fake_1000, copy.deepcopy(_model()), backend="cpu")
    b = gl.Linker(fake_1000, copy.deepcopy(_model()), backend="cpu")
    a.table_management.register_term_frequency_lookup(lookup, "first_name")
    b.table_management.register_term_frequency_lookup(with_nulls, "first_name")
    pd.testing.assert_frame_equal(
        a.inference.predict().to_pandas(), b.inference.predict().to_pandas(), check_exact=True
    )


def test_score_pair_uses_the_lookup_as_splink(fake_1000):
    model = _model()
    db, sl, gk = _linkers(fake_1000, model)
    lookup = _lookup(fake_1000, "first_name")
    sl.table_management.register_term_frequency_lookup(db.register(lookup), "first_name")
    gk.table_management.register_term_frequency_lookup(lookup, "first_name")
    rec = fake_1000.iloc[3].to_dict()
    new = {**rec, "unique_id": 10_000, "first_name": "Quixote"}  # only in the lookup
    for left, right in [(rec, {**rec, "unique_id": 10_001}), (new, {**new, "unique_id": 10_002})]:
        s = sl.inference.score_pair(left, right).as_pandas_dataframe()
        g = gk.inference.score_pair(left, right).to_pandas()
        assert g["match_weight"][0] == pytest.approx(s["match_weight"][0], abs=1e-9)
        assert g["tf_first_name_l"][0] == pytest.approx(s["tf_first_name_l"][0], abs=1e-12)
