"""Linear-time grouping (plan building) and the record samples of u estimation."""

from __future__ import annotations

import numpy as np
import pytest

from gpulink import sampling
from gpulink.errors import InputError
from gpulink.kernels.grouping import dense_ids, stable_order


@pytest.mark.parametrize("n, distinct", [(0, 1), (1, 1), (1000, 3), (50_000, 40_000)])
def test_dense_ids_are_a_relabelling_of_np_unique(n, distinct):
    rng = np.random.default_rng(n)
    keys = rng.integers(-(2**62), 2**62, size=distinct)[rng.integers(0, distinct, size=n)]
    ids, n_ids = dense_ids(keys.astype(np.int64))
    uniq, inverse = np.unique(keys, return_inverse=True)
    assert n_ids == len(uniq)
    # same partition: a bijection between the two labellings
    pairs = set(zip(ids.tolist(), inverse.ravel().tolist()))
    assert len(pairs) == n_ids
    # numbered by first appearance
    first = [int(ids[i]) for i in sorted(np.unique(keys, return_index=True)[1])]
    assert first == list(range(n_ids))


def test_stable_order_equals_numpy_stable_argsort():
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 50, size=10_000).astype(np.int64)
    np.testing.assert_array_equal(stable_order(keys, 50), np.argsort(keys, kind="stable"))


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_and_dedupe", "link_only"])
def test_pairs_with_right_in_equal_brute_force(link_type):
    rng = np.random.default_rng(2)
    source = np.sort(rng.integers(0, 3, size=60)).astype(np.int32)
    sample = np.sort(rng.choice(60, size=25, replace=False)).astype(np.int64)
    right = np.sort(rng.choice(sample, size=9, replace=False))
    left_of, right_of = sampling.pairs_with_right_in(sample, right, source, link_type)
    want = {
        (int(x), int(y))
        for x in sample
        for y in right
        if x < y and (link_type != "link_only" or source[x] != source[y])
    }
    got = list(zip(left_of.tolist(), right_of.tolist()))
    assert len(got) == len(set(got)) and set(got) == want


@pytest.mark.parametrize("max_pairs", [1, 7, 40, 10_000])
def test_right_batches_partition_right_within_the_pair_budget(max_pairs):
    rng = np.random.default_rng(4)
    sample = np.sort(rng.choice(500, size=120, replace=False)).astype(np.int64)
    right = np.sort(rng.choice(sample, size=40, replace=False))
    batches = sampling.right_batches(sample, right, max_pairs)
    np.testing.assert_array_equal(np.concatenate(batches), right)
    source = np.zeros(500, np.int32)
    for batch in batches:
        n_pairs = len(sampling.pairs_with_right_in(sample, batch, source, "dedupe_only")[0])
        assert n_pairs <= max_pairs or len(batch) == 1


def test_chunks_partition_the_sample_and_the_probe_is_inside_chunk_0():
    s = sampling.sample_records(np.zeros(5000, np.int32), "dedupe_only", 1e5, 10,
                                np.random.default_rng(3))  # fmt: skip
    # each record kept with probability ~ sqrt(2e5) / 5000: binomial, SD ~20
    assert abs(len(s.records) - sampling.rows_needed_for_n_pairs(1e5)) < 100
    chunks = [s.chunk(k) for k in range(10)]
    assert sum(map(len, chunks)) == len(s.records)
    np.testing.assert_array_equal(np.sort(np.concatenate(chunks)), s.records)
    assert set(s.probe().tolist()) <= set(chunks[0].tolist())
    again = sampling.sample_records(np.zeros(5000, np.int32), "dedupe_only", 1e5, 10,
                                    np.random.default_rng(3))  # fmt: skip
    np.testing.assert_array_equal(again.records, s.records)


def test_link_only_proportion_follows_splink():
    source = np.repeat([0, 1], [300, 700]).astype(np.int32)
    # Splink: proportion = sqrt(max_pairs / links), links = 300 * 700
    assert sampling.sample_proportion(source, "link_only", 21_000) == pytest.approx(
        np.sqrt(21_000 / 210_000)
    )
    assert sampling.sample_proportion(source, "link_only", 1e9) == 1.0


def test_no_pairs_is_a_clear_error():
    with pytest.raises(InputError, match="no record pairs"):
        sampling.sample_records(np.zeros(1, np.int32), "dedupe_only", 10, 10,
                                np.random.default_rng(0))  # fmt: skip
    with pytest.raises(InputError, match="different datasets"):
        sampling.sample_records(np.zeros(5, np.int32), "link_only", 10, 10,
                                np.random.default_rng(0))  # fmt: skip
