"""deterministic_link, clustering its pairs, and compute_tf_table, against Splink 5 + DuckDB.

Splink is the oracle: the same settings and data go through both, and the tables must agree
(columns and their order, rows, values; term frequencies to 1e-12). Where Splink orders
columns by a Python set (the columns of a level reading several, the columns only the
blocking rules read) the order changes from run to run, so those groups are compared as sets
in their place.
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
from gpulink.deterministic import deterministic_link  # noqa: E402


def _halves(df, src: str | None):
    a, b = df.iloc[::2].reset_index(drop=True), df.iloc[1::2].reset_index(drop=True)
    if src is not None:
        a, b = a.assign(**{src: "A"}), b.assign(**{src: "B"})
    return [a, b]


def linkers(data, settings, names=None):
    db = DuckDBAPI()
    if isinstance(data, list):
        names = names or [f"df_{i}" for i in range(len(data))]
        tables = [db.register(df, dataset_display_name=n) for df, n in zip(data, names)]
    else:
        tables = db.register(data)
    sl = splink.Linker(tables, copy.deepcopy(settings), log_level=logging.ERROR)
    aliases = names if isinstance(data, list) else None
    gk = gl.Linker(data, copy.deepcopy(settings), backend="cpu", input_table_aliases=aliases)
    return sl, gk


def _in_order(columns: list[str], unordered: list[set[str]]) -> list[str]:
    """``columns`` with each group of ``unordered`` (which must sit together) sorted in place."""
    out = list(columns)
    for group in unordered:
        where = [i for i, c in enumerate(out) if c in group]
        assert len(where) == len(group), f"columns {sorted(group - set(out))} are missing"
        assert where == list(range(where[0], where[0] + len(where))), f"{group} not together"
        out[where[0] : where[-1] + 1] = sorted(group)
    return out


def assert_same_rows(s, g, keys, atol=1e-12):
    """Same rows (matched on ``keys``), equal values in every column (floats to ``atol``)."""
    assert len(s) == len(g)
    s, g = s.copy(), g.copy()
    for df in (s, g):
        for k in keys:
            df[k] = df[k].astype(str)
    assert not s.duplicated(keys).any() and not g.duplicated(keys).any()
    merged = s.merge(g, on=keys, how="outer", suffixes=("_s", "_g"), indicator=True)
    assert (merged["_merge"] == "both").all(), "the row sets differ"
    for col in (c for c in s.columns if c not in keys):
        a, b = merged[f"{col}_s"], merged[f"{col}_g"]
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            ok = np.isclose(a.astype(float), b.astype(float), rtol=0, atol=atol) | (
                a.isna() & b.isna()
            )
        else:
            ok = (a.astype(str) == b.astype(str)) | (a.isna() & b.isna())
        assert ok.all(), f"column {col!r} differs on {int((~ok).sum())} rows"


RULES = [block_on("first_name", "surname"), block_on("dob", "substr(email, 1, 3)")]

# name -> (settings keywords, groups of columns Splink orders by a set)
DEDUPE_CASES = {
    # Splink's documented use: rules only, no model
    "no_comparisons": (
        {},
        [{"first_name_l", "first_name_r", "surname_l", "surname_r", "dob_l", "dob_r"}
         | {"email_l", "email_r"}],
    ),
    "tf_comparisons": (
        {
            "comparisons": [
                scl.NameComparison("first_name").configure(term_frequency_adjustments=True),
                scl.DateOfBirthComparison("dob", input_is_string=True),
                scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            ],
        },
        [{"surname_l", "surname_r", "email_l", "email_r"}],
    ),
    # two-column levels (a set in Splink), TF on both columns
    "forename_surname": (
        {"comparisons": [scl.ForenameSurnameComparison("first_name", "surname")]},
        [{"first_name_l", "first_name_r", "surname_l", "surname_r"},
         {"dob_l", "dob_r", "email_l", "email_r"}],
    ),
    # without the matching columns the comparisons' columns stay; the rules' ones go
    "no_matching_columns_additional": (
        {
            "comparisons": [scl.ExactMatch("city").configure(term_frequency_adjustments=True),
                            scl.LevenshteinAtThresholds("email")],
            "retain_matching_columns": False,
            "additional_columns_to_retain": ["cluster", "city"],
        },
        [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(DEDUPE_CASES))
def test_deterministic_link_dedupe_as_splink(fake_1000, case):
    kwargs, unordered = DEDUPE_CASES[case]
    settings = SettingsCreator(
        link_type="dedupe_only", blocking_rules_to_generate_predictions=RULES, **kwargs
    )
    sl, gk = linkers(fake_1000, settings)
    sr = sl.inference.deterministic_link()
    gr = gk.inference.deterministic_link()
    s, g = sr.as_pandas_dataframe(), gr.as_pandas_dataframe()
    assert _in_order(list(g.columns), unordered) == _in_order(list(s.columns), unordered)
    assert len(s) > 100  # enough pairs to mean something
    assert_same_rows(s, g, ["unique_id_l", "unique_id_r"])
    assert gr.metadata == sr.metadata == {"is_deterministic_link": True}
    # the pairs predict would score, with the same match_key
    assert set(s["match_key"]) == {"0", "1"}


@pytest.mark.parametrize("src", [None, "src"])
@pytest.mark.parametrize("link_type", ["link_only", "link_and_dedupe"])
def test_deterministic_link_links_as_splink(fake_1000, src, link_type):
    kw = {} if src is None else {"source_dataset_column_name": src}
    settings = SettingsCreator(
        link_type=link_type,
        comparisons=[scl.ExactMatch("city").configure(term_frequency_adjustments=True)],
        blocking_rules_to_generate_predictions=[block_on("surname"), block_on("dob")],
        additional_columns_to_retain=["cluster"],
        **kw,
    )
    sl, gk = linkers(_halves(fake_1000, src), settings, None if src else ["df_a", "df_b"])
    s = sl.inference.deterministic_link().as_pandas_dataframe()
    g = gk.inference.deterministic_link().as_pandas_dataframe()
    sd = src or "source_dataset"
    unordered = [{"surname_l", "surname_r", "dob_l", "dob_r"}]
    assert _in_order(list(g.columns), unordered) == _in_order(list(s.columns), unordered)
    assert list(g.columns[:4]) == [f"{sd}_l", f"{sd}_r", "unique_id_l", "unique_id_r"]
    assert_same_rows(s, g, [f"{sd}_l", "unique_id_l", f"{sd}_r", "unique_id_r"])
    if link_type == "link_only":
        assert (g[f"{sd}_l"] != g[f"{sd}_r"]).all()


def test_deterministic_link_chunks_and_backend_give_the_same_pairs(fake_1000):
    """Small chunks of the pair-index space give the same table; the pairs are predict's."""
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[scl.ExactMatch("city")],
        blocking_rules_to_generate_predictions=RULES,
    )
    gk = gl.Linker(fake_1000, settings, backend="cpu")
    whole = gk.inference.deterministic_link()
    chunked = deterministic_link(gk, chunk_pairs=7)
    assert chunked.to_arrow().equals(whole.to_arrow())
    assert np.array_equal(chunked.left_index, whole.left_index)
    scored = gk.inference.predict().to_arrow()
    pairs = whole.to_arrow()
    for col in ("unique_id_l", "unique_id_r", "match_key"):
        assert scored.column(col).equals(pairs.column(col))


def test_deterministic_link_needs_rules(fake_1000):
    gk = gl.Linker(fake_1000, SettingsCreator(link_type="dedupe_only"), backend="cpu")
    with pytest.raises(gl.SettingsError, match="no blocking_rules_to_generate_predictions"):
        gk.inference.deterministic_link()


def test_a_model_without_comparisons_cannot_score_or_train(fake_1000):
    settings = SettingsCreator(
        link_type="dedupe_only", blocking_rules_to_generate_predictions=RULES
    )
    gk = gl.Linker(fake_1000, settings, backend="cpu")
    with pytest.raises(gl.SettingsError, match="no comparisons"):
        gk.inference.predict()
    with pytest.raises(gl.SettingsError, match="no comparisons"):
        gk.training.estimate_u_using_random_sampling(max_pairs=1e4)
    with pytest.raises(gl.SettingsError, match="no comparisons"):
        gk.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))


@pytest.mark.parametrize(
    "link_type,src", [("dedupe_only", None), ("link_only", None), ("link_and_dedupe", "src")]
)
def test_clusters_of_deterministic_pairs_as_splink(fake_1000, link_type, src):
    """Splink clusters deterministic_link's pairs with no threshold (every pair is a link) and
    refuses a threshold (the pairs have no match_probability)."""
    kw = {} if src is None else {"source_dataset_column_name": src}
    settings = SettingsCreator(
        link_type=link_type,
        blocking_rules_to_generate_predictions=[block_on("surname"), block_on("dob")],
        **kw,
    )
    data = fake_1000 if link_type == "dedupe_only" else _halves(fake_1000, src)
    sl, gk = linkers(data, settings)
    sp, gp = sl.inference.deterministic_link(), gk.inference.deterministic_link()
    sc = sl.clustering.cluster_pairwise_predictions_at_threshold(sp)
    gc = gk.clustering.cluster_pairwise_predictions_at_threshold(gp)
    s, g = sc.as_pandas_dataframe(), gc.as_pandas_dataframe()
    assert list(g.columns) == list(s.columns)
    keys = ["unique_id"] if link_type == "dedupe_only" else [src or "source_dataset", "unique_id"]
    assert_same_rows(s, g, keys)
    assert gc.metadata == sc.metadata == {}
    assert g["cluster_id"].nunique() < len(g) / 1.2  # many records did cluster
    for threshold in ({"threshold_match_probability": 0.9}, {"threshold_match_weight": 2}):
        with pytest.raises(ValueError, match="match_probability"):
            sl.clustering.cluster_pairwise_predictions_at_threshold(sp, **threshold)
        with pytest.raises(ValueError, match="match_probability"):
            gk.clustering.cluster_pairwise_predictions_at_threshold(gp, **threshold)


# -- compute_tf_table -----------------------------------------------------------------------


def _with_numbers(df):
    n = np.arange(len(df))
    return df.assign(num=np.where(n % 7 == 0, np.nan, n % 5 * 1.5), empty=None)


@pytest.mark.parametrize(
    "column", ["first_name", "surname", "dob", "city", "unique_id", "num", '"email"', "CITY"]
)
def test_compute_tf_table_as_splink(fake_1000, column):
    settings = SettingsCreator(
        link_type="dedupe_only",
        # dob is parsed as dates by the model: its TF table is still of the input strings
        comparisons=[scl.DateOfBirthComparison("dob", input_is_string=True),
                     scl.NameComparison("first_name").configure(term_frequency_adjustments=True)],
        blocking_rules_to_generate_predictions=[block_on("surname")],
    )  # fmt: skip
    sl, gk = linkers(_with_numbers(fake_1000), settings)
    gk.inference.predict()  # the model's columns are encoded first
    s = sl.table_management.compute_tf_table(column).as_pandas_dataframe()
    g = gk.table_management.compute_tf_table(column).as_pandas_dataframe()
    assert list(g.columns) == list(s.columns)
    value = s.columns[0]
    assert_same_rows(s, g, [value])
    assert g[value].notna().all()
    assert g[g.columns[1]].sum() == pytest.approx(1.0, abs=1e-12)


def test_compute_tf_table_links_and_prefix_as_splink(fake_1000):
    settings = SettingsCreator(
        link_type="link_and_dedupe",
        comparisons=[scl.ExactMatch("city")],
        blocking_rules_to_generate_predictions=[block_on("surname")],
        term_frequency_adjustment_column_prefix="freq_",
    )
    sl, gk = linkers(_halves(fake_1000, None), settings)
    for column in ("surname", "source_dataset"):
        s = sl.table_management.compute_tf_table(column).as_pandas_dataframe()
        g = gk.table_management.compute_tf_table(column).as_pandas_dataframe()
        assert list(g.columns) == list(s.columns) == [column, f"freq_{column}"]
        assert_same_rows(s, g, [column])


def test_compute_tf_table_of_an_all_null_column_as_splink_and_a_missing_one(fake_1000):
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[scl.ExactMatch("city")],
        blocking_rules_to_generate_predictions=[block_on("surname")],
    )
    sl, gk = linkers(_with_numbers(fake_1000), settings)
    s = sl.table_management.compute_tf_table("empty").as_pandas_dataframe()
    g = gk.table_management.compute_tf_table("empty").as_pandas_dataframe()
    assert list(g.columns) == list(s.columns) == ["empty", "tf_empty"]
    assert len(g) == len(s) == 0
    with pytest.raises(gl.InputError, match="did you mean 'surname'"):
        gk.table_management.compute_tf_table("surnam")
