"""Random record samples and the pairs among them, for estimating u as Splink 5 does.

Splink 5's ``estimate_u_using_random_sampling`` does not draw independent random pairs: it
keeps a random proportion of the records (about ``sqrt(2 * max_pairs)`` of them for a dedupe),
takes every pair among them that the link type allows, and splits the right-hand records into
chunks so that each comparison can stop as soon as each of its levels has been seen
``min_count_per_level`` times. This module builds that sample and the pairs of each chunk;
:meth:`gpulink.training.LinkerTraining.estimate_u_using_random_sampling` counts the levels.

A sample of a few thousand records has a few thousand distinct values per column, so the pairs'
comparisons read a working set that stays in the CPU caches (or the GPU's L2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpulink.errors import InputError

#: The probe is one chunk of ``PROBE_FACTOR * num_chunks`` (Splink: 1 % of max_pairs for 10).
PROBE_FACTOR = 10


def rows_needed_for_n_pairs(n_pairs: float) -> float:
    """Records ``r`` whose ``r (r - 1) / 2`` pairs number ``n_pairs`` (Splink's formula).

    >>> round(rows_needed_for_n_pairs(45))
    10
    """
    return 0.5 * ((8 * n_pairs + 1) ** 0.5 + 1)


def all_pairs_count(source_codes: np.ndarray, link_type: str) -> int:
    """Record pairs the link type allows among records with these source codes.

    >>> all_pairs_count(np.array([0, 0, 1]), "link_only"), all_pairs_count(np.zeros(3), "x")
    (2, 3)
    """
    n = len(source_codes)
    if link_type != "link_only":
        return n * (n - 1) // 2
    sizes = np.bincount(np.asarray(source_codes, dtype=np.int64)).astype(np.int64)
    return (int(sizes.sum()) ** 2 - int((sizes**2).sum())) // 2


def sample_proportion(source_codes: np.ndarray, link_type: str, max_pairs: float) -> float:
    """The proportion of records to keep so that their pairs number about ``max_pairs``.

    Dedupes: ``rows_needed_for_n_pairs(max_pairs) / n``; links: ``sqrt(max_pairs / links)``
    (Splink's ``_proportion_sample_size_link_only``). Capped at 1.

    >>> sample_proportion(np.zeros(1000), "dedupe_only", 4950)
    0.1
    """
    n = len(source_codes)
    if link_type == "link_only":
        links = all_pairs_count(source_codes, link_type)
        proportion = math.sqrt(max_pairs / links) if links else 1.0
    else:
        proportion = rows_needed_for_n_pairs(max_pairs) / n if n else 1.0
    return min(float(proportion), 1.0)


@dataclass
class RecordSample:
    """Sampled records (sorted indices) and each one's chunk label in ``[0, 10 * chunks)``."""

    records: np.ndarray
    labels: np.ndarray
    num_chunks: int

    def chunk(self, k: int) -> np.ndarray:
        """Records of right-hand chunk ``k`` (``0 <= k < num_chunks``)."""
        return self.records[self.labels % self.num_chunks == k]

    def probe(self) -> np.ndarray:
        """Records of the probe chunk: one tenth of chunk 0."""
        return self.records[self.labels == 0]


def sample_records(
    source_codes: np.ndarray,
    link_type: str,
    max_pairs: float,
    num_chunks: int,
    rng: np.random.Generator,
) -> RecordSample:
    """Keep each record with :func:`sample_proportion`'s probability; label it with a chunk.

    >>> s = sample_records(np.zeros(100, np.int32), "dedupe_only", 1e9, 10,
    ...                    np.random.default_rng(0))
    >>> len(s.records), bool(s.labels.min() >= 0 and s.labels.max() < 100)
    (100, True)
    """
    n = len(source_codes)
    if all_pairs_count(source_codes, link_type) == 0:
        raise InputError(
            "there are no record pairs to sample: the input has fewer than two records"
            + (" in different datasets" if link_type == "link_only" else "")
        )
    proportion = sample_proportion(source_codes, link_type, max_pairs)
    if proportion >= 1.0:
        records = np.arange(n, dtype=np.int64)
    else:
        records = np.flatnonzero(rng.random(n) < proportion).astype(np.int64)
    labels = rng.integers(0, PROBE_FACTOR * num_chunks, size=len(records))
    return RecordSample(records, labels, num_chunks)


def right_batches(sample: np.ndarray, right: np.ndarray, max_pairs: int) -> list[np.ndarray]:
    """Split ``right`` (sorted, a subset of ``sample``) into consecutive runs whose pairs with
    the sample (:func:`pairs_with_right_in`, before any link-only filter) number at most
    ``max_pairs`` each, a run holding one record when that record alone has more.

    >>> [b.tolist() for b in right_batches(np.arange(6), np.array([1, 2, 4, 5]), 5)]
    [[1, 2], [4], [5]]
    """
    below = np.searchsorted(sample, right)
    batches = []
    start = 0
    ends = np.cumsum(below)
    while start < len(right):
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + max_pairs, side="right"))
        stop = max(stop, start + 1)
        batches.append(right[start:stop])
        start = stop
    return batches


def pairs_with_right_in(
    sample: np.ndarray, right: np.ndarray, source_codes: np.ndarray, link_type: str
) -> tuple[np.ndarray, np.ndarray]:
    """Every allowed pair ``(l, r)``, ``l < r``, with ``l`` in ``sample`` and ``r`` in ``right``.

    ``sample`` and ``right`` are sorted record indices, ``right`` a subset of ``sample``; as
    Splink's ``l.id < r.id`` with the chunk taken on the right. Link-only pairs join records of
    different datasets only.

    >>> l, r = pairs_with_right_in(np.array([0, 2, 5]), np.array([2, 5]), np.zeros(6), "x")
    >>> l.tolist(), r.tolist()
    ([0, 0, 2], [2, 5, 5])
    """
    below = np.searchsorted(sample, right)  # how many sample records precede each right one
    total = int(below.sum())
    right_of = np.repeat(right, below)
    starts = np.repeat(np.cumsum(below) - below, below)
    left_of = sample[np.arange(total, dtype=np.int64) - starts]
    if link_type == "link_only":
        keep = source_codes[left_of] != source_codes[right_of]
        left_of, right_of = left_of[keep], right_of[keep]
    return left_of.astype(np.int64), right_of.astype(np.int64)


#: Seed of the per-record uniforms that EM sampling thresholds: samples are nested (the probe's
#: records are in every larger sample) and the same for every run on the same records.
EM_SAMPLE_SEED = 20_241_124


@dataclass
class EmSample:
    """How EM's training pairs were sampled (Splink 5's ``max_pairs`` sampling)."""

    mask: np.ndarray | None  # records kept (None: all, no sampling)
    probe_pairs: int
    estimated_total_pairs: float
    proportion: float  # of records kept on each side (1.0: all)
    reason: str


def em_record_sample(
    n_records: int,
    count_pairs_among,
    max_pairs: float | None,
    probe_proportion: float,
) -> EmSample:
    """Splink 5's EM sampling: records whose per-record uniform is below ``probe_proportion``
    give a probe count of the rule's pairs, ``P ~ probe / q^2``; if ``P > max_pairs``, records
    below ``p* = sqrt(max_pairs / P)`` are kept, so about ``max_pairs`` pairs remain.
    ``count_pairs_among(mask)`` counts the rule's pairs among the records of a mask.

    >>> s = em_record_sample(1000, lambda m: int(m.sum()) ** 2 // 2, 100.0, 0.5)
    >>> s.proportion < 1, s.reason.startswith("sampled")
    (True, True)
    """
    if max_pairs is None:
        return EmSample(None, 0, float("nan"), 1.0, "max_pairs is None: no sampling")
    uniforms = np.random.default_rng(EM_SAMPLE_SEED).random(n_records)
    probe = uniforms < probe_proportion
    probe_pairs = int(count_pairs_among(probe))
    if probe_pairs == 0:
        return EmSample(None, 0, float("nan"), 1.0, "the probe found no pairs: no sampling")
    estimated = probe_pairs / probe_proportion**2
    if estimated <= max_pairs:
        return EmSample(
            None, probe_pairs, estimated, 1.0, f"about {estimated:,.0f} pairs <= max_pairs"
        )
    proportion = math.sqrt(max_pairs / estimated)
    return EmSample(
        uniforms < proportion, probe_pairs, estimated, proportion,
        f"sampled: about {estimated:,.0f} pairs, records kept with probability {proportion:.4g}",
    )  # fmt: skip


__all__ = [
    "EmSample",
    "RecordSample",
    "all_pairs_count",
    "em_record_sample",
    "pairs_with_right_in",
    "rows_needed_for_n_pairs",
    "sample_proportion",
    "sample_records",
]
