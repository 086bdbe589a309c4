"""Linear-time grouping on the CPU: dense ids of integer keys (hashing) and counting sorts.

Building a blocking plan groups the records by the key of each rule and orders each rule's
members by group. Sorting (``np.unique``, ``np.argsort``) costs ``O(n log n)`` per key column;
a hash table gives dense ids and a counting sort gives the stable order in ``O(n)``.
"""

from __future__ import annotations

import numpy as np

from gpulink.kernels._targets import cpu_jit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@cpu_jit(nogil=True)
def dense_ids(keys):
    """Dense ids (int32, numbered by first appearance) of int64 ``keys``; and how many.

    >>> ids, n = dense_ids(np.array([7, 3, 7, 9], np.int64))
    >>> ids.tolist(), n
    ([0, 1, 0, 2], 3)
    """
    n = keys.shape[0]
    bits = 1
    while (1 << bits) < 2 * n:
        bits += 1
    size = 1 << bits
    mask = size - 1
    shift = np.uint64(64 - bits)
    slot_key = np.empty(size, np.int64)
    slot_id = np.full(size, -1, np.int32)
    out = np.empty(n, np.int32)
    n_ids = 0
    for r in range(n):
        k = keys[r]
        h = np.int64((np.uint64(k) * _GOLDEN) >> shift) & mask
        while True:
            s = slot_id[h]
            if s < 0:
                slot_key[h] = k
                slot_id[h] = n_ids
                out[r] = n_ids
                n_ids += 1
                break
            if slot_key[h] == k:
                out[r] = s
                break
            h = (h + 1) & mask
    return out, n_ids


@cpu_jit(nogil=True)
def stable_order(keys, n_keys):
    """The stable sorting permutation of ``keys`` in ``[0, n_keys)`` (a counting sort).

    >>> stable_order(np.array([2, 0, 2, 1], np.int64), 3).tolist()
    [1, 3, 0, 2]
    """
    n = keys.shape[0]
    start = np.zeros(n_keys + 1, np.int64)
    for r in range(n):
        start[keys[r] + 1] += 1
    for k in range(n_keys):
        start[k + 1] += start[k]
    order = np.empty(n, np.int64)
    for r in range(n):
        k = keys[r]
        order[start[k]] = r
        start[k] += 1
    return order


@cpu_jit(nogil=True)
def distinct_rows(keys, bits, counts):
    """Distinct ``(keys[r], bits[r])`` rows (int64 pairs) with their summed ``counts``.

    Rows come out in order of first appearance.

    >>> k, b, n = distinct_rows(np.array([5, 5, 2]), np.array([1, 1, 1]), np.ones(3))
    >>> k.tolist(), b.tolist(), n.tolist()
    ([5, 2], [1, 1], [2.0, 1.0])
    """
    n = keys.shape[0]
    bits_log = 1
    while (1 << bits_log) < 2 * n:
        bits_log += 1
    size = 1 << bits_log
    mask = size - 1
    shift = np.uint64(64 - bits_log)
    slot_row = np.full(size, -1, np.int64)
    out_k = np.empty(n, np.int64)
    out_b = np.empty(n, np.int64)
    out_n = np.zeros(n, np.float64)
    m = 0
    for r in range(n):
        k = keys[r]
        b = bits[r]
        h = np.int64(((np.uint64(k) ^ (np.uint64(b) * _GOLDEN)) * _GOLDEN) >> shift) & mask
        while True:
            s = slot_row[h]
            if s < 0:
                slot_row[h] = m
                out_k[m] = k
                out_b[m] = b
                out_n[m] = counts[r]
                m += 1
                break
            if out_k[s] == k and out_b[s] == b:
                out_n[s] += counts[r]
                break
            h = (h + 1) & mask
    return out_k[:m].copy(), out_b[:m].copy(), out_n[:m].copy()


__all__ = ["dense_ids", "distinct_rows", "stable_order"]
