"""The output tables a Splink 5 user sees, compared with Splink + DuckDB (the oracle).

Column sets, their order and their values for predict (every combination of
``retain_matching_columns`` and ``retain_intermediate_calculation_columns``, the columns only the
blocking rules read, a named source dataset column) and for the linker's clustering (every
input column), and the ``SplinkDataFrame`` methods of the results (limits, parquet and CSV files
that refuse to overwrite).
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
splink = pytest.importorskip("splink")

import splink.comparison_library as scl  # noqa: E402
from splink import DuckDBAPI, SettingsCreator, block_on  # noqa: E402

import gpulink as gl  # noqa: E402


def with_parameters(settings_creator, seed: int = 0) -> dict:
    """Splink's settings dict with seeded, valid m/u on every non-null level."""
    d = settings_creator.create_settings_dict("duckdb")
    rng = np.random.default_rng(seed)
    for comparison in d["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        m = np.sort(rng.dirichlet(np.ones(len(levels))))[::-1]
        u = np.sort(rng.dirichlet(np.ones(len(levels))))
        for level, mm, uu in zip(levels, m, u):
            level["m_probability"] = float(mm)
            level["u_probability"] = float(max(uu, 1e-4))
    d["probability_two_random_records_match"] = 0.01
    return d


def linkers(data, settings, names=None):
    db = DuckDBAPI()
    if isinstance(data, list):
        tables = [
            db.register(df, dataset_display_name=n)
            for df, n in zip(data, names or [None] * len(data))
        ]
    else:
        tables = db.register(data)
    sl = splink.Linker(tables, copy.deepcopy(settings), log_level=logging.ERROR)
    gk = gl.Linker(data, copy.deepcopy(settings), backend="cpu", input_table_aliases=names)
    return sl, gk


def assert_same_values(s, g, keys):
    """Same rows (matched on ``keys``) and equal values in every column both frames have."""
    s, g = s.copy(), g.copy()
    for df in (s, g):
        for k in keys:
            df[k] = df[k].astype(str)
    merged = s.merge(g, on=keys, how="outer", suffixes=("_s", "_g"), indicator=True)
    assert (merged["_merge"] == "both").all(), "the row sets differ"
    for col in (c for c in s.columns if c in g.columns and c not in keys):
        a, b = merged[f"{col}_s"], merged[f"{col}_g"]
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            ok = np.isclose(a.astype(float), b.astype(float), rtol=0, atol=1e-9) | (
                a.isna() & b.isna()
            )
        else:
            ok = (a.astype(str) == b.astype(str)) | (a.isna() & b.isna())
        assert ok.all(), f"column {col!r} differs on {int((~ok).sum())} rows"


def _settings(**kwargs):
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            scl.JaroAtThresholds("surname"),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        # email is read by a rule only: Splink keeps it as email_l/_r with the matching columns
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("email")],
        **kwargs,
    )


FLAGS = [
    {},  # Splink's defaults: matching columns (and gammas), no intermediate columns
    {"retain_matching_columns": True, "retain_intermediate_calculation_columns": True},
    {"retain_matching_columns": True, "retain_intermediate_calculation_columns": False},
    {"retain_matching_columns": False, "retain_intermediate_calculation_columns": True},
    {"retain_matching_columns": False, "retain_intermediate_calculation_columns": False},
]


@pytest.mark.parametrize(
    "flags", FLAGS, ids=lambda f: ",".join(f"{k[7:12]}={v}" for k, v in f.items()) or "default"
)
def test_predict_columns_order_and_gammas_as_splink(fake_1000, flags):
    settings = with_parameters(_settings(**flags), seed=1)
    sl, gk = linkers(fake_1000, settings)
    s = sl.inference.predict(threshold_match_probability=0.2).as_pandas_dataframe()
    g = gk.inference.predict(threshold_match_probability=0.2).as_pandas_dataframe()
    assert list(g.columns) == list(s.columns)
    gammas = [c for c in s.columns if c.startswith("gamma_")]
    for c in gammas:
        assert g[c].dtype == s[c].dtype == np.int32, c
    assert_same_values(s, g, ["unique_id_l", "unique_id_r"])


def test_columns_only_blocking_rules_read_as_splink(fake_1000):
    """Splink orders several rule-only columns by a Python set (its order changes with the hash
    seed); gpulink lists them in the rules' order. The set, the place and the values agree."""
    s = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[scl.ExactMatch("first_name")],
        blocking_rules_to_generate_predictions=[
            block_on("first_name"),
            block_on("surname", "cluster"),
            block_on("substr(dob, 1, 4)"),
            "l.email = r.email",
        ],
        additional_columns_to_retain=["city"],
    )
    sl, gk = linkers(fake_1000, with_parameters(s, seed=2))
    sp = sl.inference.predict().as_pandas_dataframe()
    gp = gk.inference.predict().as_pandas_dataframe()
    head = ["match_weight", "match_probability", "unique_id_l", "unique_id_r"]
    head += ["first_name_l", "first_name_r", "gamma_first_name"]
    tail = ["city_l", "city_r", "match_key"]
    assert list(sp.columns[:7]) == head and list(sp.columns[-3:]) == tail
    assert (
        list(gp.columns)
        == head
        + [f"{c}_{side}" for c in ("surname", "cluster", "dob", "email") for side in "lr"]
        + tail
    )
    assert set(gp.columns) == set(sp.columns)
    assert_same_values(sp, gp, ["unique_id_l", "unique_id_r"])


def _halves(df, src: str | None):
    a, b = df.iloc[::2].reset_index(drop=True), df.iloc[1::2].reset_index(drop=True)
    if src is not None:
        a, b = a.assign(**{src: "A"}), b.assign(**{src: "B"})
    return [a, b]


def _link_linkers(fake_1000, src, link_type):
    kw = {} if src is None else {"source_dataset_column_name": src}
    s = SettingsCreator(
        link_type=link_type,
        comparisons=[scl.ExactMatch("surname"), scl.JaroWinklerAtThresholds("city")],
        blocking_rules_to_generate_predictions=[block_on("first_name")],
        **kw,
    )
    names = None if src is not None else ["df_a", "df_b"]
    return linkers(_halves(fake_1000, src), with_parameters(s, seed=3), names)


@pytest.mark.parametrize("src", [None, "src"])
@pytest.mark.parametrize("link_type", ["link_only", "link_and_dedupe"])
def test_source_dataset_pair_columns_as_splink(fake_1000, src, link_type):
    """With source_dataset_column_name='src' (the inputs carry it) the pairs have src_l/src_r;
    without, Splink's default source_dataset_l/_r."""
    sl, gk = _link_linkers(fake_1000, src, link_type)
    sd = src or "source_dataset"
    s_pairs = sl.inference.predict().as_pandas_dataframe()
    g_pairs = gk.inference.predict().to_pandas()
    assert list(g_pairs.columns) == list(s_pairs.columns)
    assert list(g_pairs.columns[2:4]) == [f"{sd}_l", f"{sd}_r"]
    assert_same_values(s_pairs, g_pairs, [f"{sd}_l", "unique_id_l", f"{sd}_r", "unique_id_r"])


def test_result_methods_as_splink(fake_1000, tmp_path):
    settings = with_parameters(_settings(), seed=5)
    sl, gk = linkers(fake_1000, settings)
    sp = sl.inference.predict(threshold_match_probability=0.5)
    gp = gk.inference.predict(threshold_match_probability=0.5)
    keys = ["unique_id_l", "unique_id_r"]
    for limit in (5, None, 0):
        assert len(gp.as_pandas_dataframe(limit=limit)) == len(sp.as_pandas_dataframe(limit=limit))
        assert len(gp.as_record_list(limit)) == len(sp.as_record_list(limit))
        assert len(gp.as_pyarrow_table(limit)) == len(sp.as_pyarrow_table(limit))
    assert list(gp.as_dict(limit=3)) == list(sp.as_dict(limit=3))
    assert set(gp.as_record_list(limit=1)[0]) == set(sp.as_record_list(limit=1)[0])

    for ext, read in (("parquet", pd.read_parquet), ("csv", pd.read_csv)):
        written = {}
        for engine, result in (("s", sp), ("g", gp)):
            path = tmp_path / engine / f"pairs.{ext}"  # the folder is created
            getattr(result, f"to_{ext}")(str(path))
            with pytest.raises(FileExistsError):
                getattr(result, f"to_{ext}")(str(path))
            getattr(result, f"to_{ext}")(str(path), overwrite=True)
            written[engine] = read(path)
        assert list(written["g"].columns) == list(written["s"].columns)
        assert_same_values(written["s"], written["g"], keys)

    gp.drop_table_from_database_and_remove_from_cache()
    with pytest.raises(gl.InputError, match="dropped"):
        gp.as_pandas_dataframe()


@pytest.mark.parametrize("threshold", [{"threshold_match_probability": 0.9}, {}])
def test_linker_clusters_carry_every_input_column_as_splink(fake_1000, threshold):
    settings = with_parameters(_settings(), seed=4)
    sl, gk = linkers(fake_1000, settings)
    sp = sl.inference.predict(threshold_match_probability=0.1)
    gp = gk.inference.predict(threshold_match_probability=0.1)
    sc = sl.clustering.cluster_pairwise_predictions_at_threshold(sp, **threshold)
    gc = gk.clustering.cluster_pairwise_predictions_at_threshold(gp, **threshold)
    s, g = sc.as_pandas_dataframe(), gc.as_pandas_dataframe()
    assert list(g.columns) == list(s.columns) == ["cluster_id", *fake_1000.columns]
    assert_same_values(s, g, ["unique_id"])
    assert gc.metadata == sc.metadata
    assert g["cluster_id"].nunique() < len(g)  # some records did cluster


@pytest.mark.parametrize("src", [None, "src"])
@pytest.mark.parametrize("link_type", ["link_only", "link_and_dedupe"])
def test_source_dataset_cluster_columns_as_splink(fake_1000, src, link_type):
    """The clusters of a link job: the inputs' own columns, their src column in place; without
    one, the source_dataset column that Splink (and gpulink) adds comes last."""
    sl, gk = _link_linkers(fake_1000, src, link_type)
    sd = src or "source_dataset"
    sc = sl.clustering.cluster_pairwise_predictions_at_threshold(sl.inference.predict(), 0.5)
    gc = gk.clustering.cluster_pairwise_predictions_at_threshold(gk.inference.predict(), 0.5)
    s_clusters, g_clusters = sc.as_pandas_dataframe(), gc.as_pandas_dataframe()
    assert list(g_clusters.columns) == list(s_clusters.columns)
    assert s_clusters.columns[-1] == sd
    assert_same_values(s_clusters, g_clusters, [sd, "unique_id"])
    assert gc.metadata == sc.metadata
