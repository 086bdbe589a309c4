"""cluster_using_single_best_links against Splink 5 (the oracle) on fake_1000 split three ways."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import gpulink as gl
import gpulink.comparison_library as gcl
from gpulink import block_on
from gpulink.single_best_links import single_best_link_representatives

COLUMNS = ("first_name", "surname", "dob", "city", "email")
# ExactMatch-only models give many equal probabilities: ties on every threshold below
M, U = [0.9, 0.1], [0.01, 0.99]


def _parts(fake_1000):
    df = fake_1000.drop(columns=["cluster"])
    return [df.iloc[i::3].reset_index(drop=True) for i in range(3)]


def _splink_linker(parts, link_type):
    splink = pytest.importorskip("splink")
    import splink.comparison_library as cl

    settings = splink.SettingsCreator(
        link_type=link_type,
        comparisons=[
            cl.ExactMatch(c).configure(m_probabilities=M, u_probabilities=U) for c in COLUMNS
        ],
        blocking_rules_to_generate_predictions=[splink.block_on("surname"), splink.block_on("dob")],
        probability_two_random_records_match=0.001,
    )
    db = splink.DuckDBAPI()
    tables = [db.register(p, dataset_display_name=n) for p, n in zip(parts, "abc")]
    return splink.Linker(tables, settings, log_level=logging.ERROR)


def _our_linker(parts, link_type):
    settings = gl.SettingsCreator(
        link_type=link_type,
        comparisons=[
            gcl.ExactMatch(c).configure(m_probabilities=M, u_probabilities=U) for c in COLUMNS
        ],
        blocking_rules_to_generate_predictions=[block_on("surname"), block_on("dob")],
        probability_two_random_records_match=0.001,
    )
    return gl.Linker(parts, settings, input_table_aliases=["a", "b", "c"])


@pytest.mark.parametrize("link_type", ["link_and_dedupe", "link_only"])
def test_equals_splink(fake_1000, link_type):
    parts = _parts(fake_1000)
    theirs_linker = _splink_linker(parts, link_type)
    ours_linker = _our_linker(parts, link_type)
    their_pred = theirs_linker.inference.predict()
    our_pred = ours_linker.inference.predict()
    probabilities = their_pred.as_pandas_dataframe()["match_probability"]
    assert probabilities.duplicated().any()  # the tie paths are exercised
    cases = [
        (["a", "b", "c"], {"threshold_match_probability": 0.5}, "lowest_id"),
        (["a", "b", "c"], {"threshold_match_probability": 0.5}, "drop"),
        (["a", "b"], {"threshold_match_probability": 0.9}, "lowest_id"),
        (["a", "b"], {"threshold_match_probability": 0.9}, "drop"),
        (["c"], {"threshold_match_probability": 0.01}, "lowest_id"),
        (["a", "c"], {"threshold_match_probability": 0.0001}, "drop"),
        (["a", "b", "c"], {"threshold_match_weight": 2.0}, "lowest_id"),
        (["b", "zzz"], {"threshold_match_weight": -5.0}, "drop"),
    ]
    merged = 0
    for dup_free, threshold, ties in cases:
        theirs = theirs_linker.clustering.cluster_using_single_best_links(
            their_pred, dup_free, ties_method=ties, **threshold
        ).as_pandas_dataframe()
        ours = ours_linker.clustering.cluster_using_single_best_links(
            our_pred, dup_free, ties_method=ties, **threshold
        ).to_arrow()
        assert ours.column_names == list(theirs.columns)
        expected = dict(
            zip(zip(theirs["source_dataset"], theirs["unique_id"]), theirs["cluster_id"])
        )
        got = dict(
            zip(
                zip(
                    ours.column("source_dataset").to_pylist(), ours.column("unique_id").to_pylist()
                ),
                ours.column("cluster_id").to_pylist(),
            )
        )
        assert got == expected, (dup_free, threshold, ties)
        merged += len(set(got.values())) < len(got)
    assert merged == len(cases)  # every case links some records


def test_ties_lowest_id_and_drop():
    # node 3 (dataset 1) ties between 0 and 1 (dataset 0, duplicate-free); 2 is a weaker link,
    # which "drop" keeps (only the tied 0.9 links go)
    args = (4, np.array([0, 1, 2]), np.array([3, 3, 3]), np.array([0.9, 0.9, 0.8]))
    code = np.array([0, 0, 0, 1])
    assert single_best_link_representatives(*args, code, [0]).tolist() == [0, 1, 2, 0]
    assert single_best_link_representatives(*args, code, [0], ties_method="drop").tolist() == [
        0,
        1,
        2,
        2,
    ]
    # dataset 0 not duplicate-free: no tie, and clusters grow past one record of dataset 0
    assert single_best_link_representatives(*args, code, [1]).tolist() == [0, 0, 0, 0]


def test_bad_arguments(fake_1000):
    parts = _parts(fake_1000)[:2]
    linker = _our_linker(parts + [parts[0].iloc[:0]], "link_only")
    pred = linker.inference.predict()
    with pytest.raises(ValueError, match="ties_method"):
        linker.clustering.cluster_using_single_best_links(pred, ["a"], ties_method="first")
    with pytest.raises(gl.InputError, match="list of source dataset names"):
        linker.clustering.cluster_using_single_best_links(pred, "a")
