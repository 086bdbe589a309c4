"""Pair enumeration: decode a pair index to a record pair, filter it, and the CPU launchers.

The blocking plan (:class:`gpulink.blocking.BlockingPlan`) lays every rule's candidate pairs out
in one *pair-index space* ``[0, n_candidates)``: rule 0's pairs first, then rule 1's, and so on.
The space is cut into *segments*; segment ``s`` owns indices ``seg_start[s] .. seg_start[s+1]-1``
and is one of two shapes over the ``members`` array (record indices, int32):

* a **triangle** (``seg_b[s] == seg_a[s]``): all pairs ``a < b`` of the ``seg_na[s]`` records
  ``members[seg_a[s] : seg_a[s] + seg_na[s]]`` (sorted by record index), in row-major order:
  local index ``q`` of row ``a`` starts at ``S(a) = a * (2n - a - 1) / 2``. Used by dedupe_only
  and link_and_dedupe: one triangle per block.
* a **rectangle** (``seg_b[s] != seg_a[s]``): rows ``members[seg_a[s] + a]`` for
  ``a < seg_na[s]`` times columns ``members[seg_b[s] + b]`` for ``b < seg_nb[s]``, row-major
  (``q = a * nb + b``). Used by link_only: within a block sorted by (source, record), the records
  of one source against all records of the later sources, so same-source pairs never take
  space in the pair-index space.

A decoded pair is oriented ``(i, j)`` with ``i < j`` (records are in Splink's orientation order,
see :mod:`gpulink.table`), and belongs to rule ``k = seg_rule[s]``. It is *emitted* (Splink's
cross-rule dedup) only if no earlier rule ``k' < k`` has both records in one non-null group:
``groups[k', i] >= 0 and groups[k', i] == groups[k', j]``.

Kernel bodies (compiled for CPU and GPU; the fused scoring kernel calls them per pair):

``decode_pair(p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members)``
    -> ``(i, j, k)``: pair index ``p`` (int64, ``0 <= p < seg_start[n_seg]``) to the record
    pair and its rule. O(log n_seg).
``pair_is_emitted(i, j, k, groups, source_codes, link_type_code)`` -> bool.
``find_segment``, ``local_pair``, ``advance_local``, ``triangle_row``, ``triangle_start``:
    the pieces, for launchers that walk consecutive indices instead of decoding each one.

Exactness: all index arithmetic is int64. ``triangle_row`` takes a float64 square root of an
exactly computed int64 discriminant and then corrects the estimate with integer comparisons, so
it is exact for any block whose pair count fits in int64 (blocks of up to ~4 * 10^9 records).

>>> import numpy as np
>>> triangle_row(4, 5), triangle_start(4, 2)  # pairs of 4: (0,1)(0,2)(0,3)(1,2)(1,3)(2,3)
(2, 5)
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gpulink.kernels._targets import cpu_jit, kernel_body, retarget_launcher

LINK_DEDUPE_ONLY = 0
LINK_ONLY = 1
LINK_AND_DEDUPE = 2
LINK_TYPE_CODES = {
    "dedupe_only": LINK_DEDUPE_ONLY,
    "link_only": LINK_ONLY,
    "link_and_dedupe": LINK_AND_DEDUPE,
}


# --------------------------------------------------------------------------------------------
# Kernel bodies
# --------------------------------------------------------------------------------------------


@kernel_body
def triangle_start(n, a):
    """Local index of pair ``(a, a + 1)`` in the row-major triangle of ``n`` records:
    ``S(a) = a * (2n - a - 1) / 2`` (exact in int64)."""
    return (a * (2 * n - a - 1)) // 2


@kernel_body
def triangle_row(n, q):
    """Row ``a`` of local pair ``q`` in a triangle of ``n`` records: the largest ``a`` with
    ``S(a) <= q``, i.e. ``floor(((2n-1) - sqrt((2n-1)^2 - 8q)) / 2)``, corrected exactly."""
    m = 2 * n - 1
    disc = m * m - 8 * q  # exact in int64; > 0 for every valid q
    a = int((m - math.sqrt(disc * 1.0)) / 2.0)
    if a < 0:
        a = 0
    if a > n - 2:
        a = n - 2
    while a > 0 and triangle_start(n, a) > q:
        a -= 1
    while a < n - 2 and triangle_start(n, a + 1) <= q:
        a += 1
    return a


@kernel_body
def find_segment(seg_start, n_seg, p):
    """The segment ``s`` holding pair index ``p``: largest ``s < n_seg`` with
    ``seg_start[s] <= p`` (binary search; ``seg_start`` strictly increasing)."""
    lo = 0
    hi = n_seg
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if seg_start[mid] <= p:
            lo = mid
        else:
            hi = mid
    return lo


@kernel_body
def local_pair(s, q, seg_a, seg_na, seg_b, seg_nb):
    """Local ``(a, b)`` of the ``q``-th pair of segment ``s`` (triangle or rectangle)."""
    if seg_b[s] == seg_a[s]:
        n = seg_na[s]
        a = triangle_row(n, q)
        b = a + 1 + (q - triangle_start(n, a))
        return a, b
    nb = seg_nb[s]
    a = q // nb
    return a, q - a * nb


@kernel_body
def advance_local(a, b, s, seg_a, seg_na, seg_b, seg_nb):
    """The local pair after ``(a, b)`` in segment ``s`` (may run past the segment's end:
    the caller moves to segment ``s + 1`` when the pair index reaches ``seg_start[s + 1]``)."""
    b += 1
    if seg_b[s] == seg_a[s]:
        if b == seg_na[s]:
            a += 1
            b = a + 1
    elif b == seg_nb[s]:
        a += 1
        b = 0
    return a, b


@kernel_body
def oriented_pair(s, a, b, seg_a, seg_b, members):
    """Record pair ``(i, j)``, ``i < j``, of local pair ``(a, b)`` of segment ``s``."""
    i = np.int64(members[seg_a[s] + a])
    j = np.int64(members[seg_b[s] + b])
    if i > j:
        return j, i
    return i, j


@kernel_body
def decode_pair(p, seg_start, n_seg, seg_a, seg_na, seg_b, seg_nb, seg_rule, members):
    """Pair index ``p`` -> ``(i, j, k)``: records ``i < j`` and the rule ``k`` whose candidate
    space holds ``p``. ``0 <= p < seg_start[n_seg]``; O(log n_seg) plus O(1)."""
    s = find_segment(seg_start, n_seg, p)
    a, b = local_pair(s, p - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
    i, j = oriented_pair(s, a, b, seg_a, seg_b, members)
    return i, j, np.int64(seg_rule[s])


@kernel_body
def pair_is_emitted(i, j, k, groups, source_codes, link_type_code):
    """True when rule ``k`` emits candidate ``(i, j)``: no earlier rule put both records in one
    non-null group (Splink's ``AND NOT (coalesce(earlier_rule, false) OR ...)``), and, for
    link_only, the records come from different source datasets.

    ``groups``: int32[n_rules, n_records], -1 = a key column is null (nulls never match).
    ``source_codes``: int32[n_records]. ``link_type_code``: 0 dedupe_only, 1 link_only,
    2 link_and_dedupe.
    """
    if link_type_code == 1 and source_codes[i] == source_codes[j]:
        return False
    for r in range(k):
        g = groups[r, i]
        if g >= 0 and g == groups[r, j]:
            return False
    return True


@kernel_body
def walk_pairs(
    p, end, s, a, b,
    seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members, groups, source_codes,
    link_type_code, out_i, out_j, out_k, out0, limit,
):  # fmt: skip
    """Walk pair indices from ``p`` (in segment ``s``, local pair ``(a, b)``) towards ``end``,
    writing each emitted pair ``(i, j)`` and its rule to ``out_*[out0 + n]``, until ``end`` or
    ``limit`` emitted pairs. Returns ``(p, s, a, b, n)`` to resume from.

    The CPU launchers walk their part of the pair-index space in these steps: decode once (a
    binary search), then O(1) per index.
    """
    n = 0
    while p < end and n < limit:
        if p == seg_start[s + 1]:
            s += 1
            a, b = local_pair(s, 0, seg_a, seg_na, seg_b, seg_nb)
        i, j = oriented_pair(s, a, b, seg_a, seg_b, members)
        k = seg_rule[s]
        if pair_is_emitted(i, j, k, groups, source_codes, link_type_code):
            out_i[out0 + n] = i
            out_j[out0 + n] = j
            out_k[out0 + n] = k
            n += 1
        a, b = advance_local(a, b, s, seg_a, seg_na, seg_b, seg_nb)
        p += 1
    return p, s, a, b, n


# --------------------------------------------------------------------------------------------
# CPU launchers (prange over sub-chunks; each thread owns its sub-chunk's counts and output)
# --------------------------------------------------------------------------------------------


def _count_range(
    p0,
    p1,
    n_sub,
    seg_start,
    seg_a,
    seg_na,
    seg_b,
    seg_nb,
    seg_rule,
    members,
    groups,
    source_codes,
    link_type_code,
    counts,
):
    n_seg = seg_start.shape[0] - 1
    span = p1 - p0
    for c in numba.prange(n_sub):
        c0 = p0 + (span * c) // n_sub
        c1 = p0 + (span * (c + 1)) // n_sub
        if c0 >= c1:
            continue
        s = find_segment(seg_start, n_seg, c0)
        a, b = local_pair(s, c0 - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
        for p in range(c0, c1):
            if p == seg_start[s + 1]:
                s += 1
                a, b = local_pair(s, 0, seg_a, seg_na, seg_b, seg_nb)
            i, j = oriented_pair(s, a, b, seg_a, seg_b, members)
            k = seg_rule[s]
            if pair_is_emitted(i, j, k, groups, source_codes, link_type_code):
                counts[c, k] += 1
            a, b = advance_local(a, b, s, seg_a, seg_na, seg_b, seg_nb)


def _enumerate_range(
    p0,
    p1,
    n_sub,
    seg_start,
    seg_a,
    seg_na,
    seg_b,
    seg_nb,
    seg_rule,
    members,
    groups,
    source_codes,
    link_type_code,
    scratch_l,
    scratch_r,
    scratch_k,
    sub_counts,
):
    n_seg = seg_start.shape[0] - 1
    span = p1 - p0
    for c in numba.prange(n_sub):
        c0 = p0 + (span * c) // n_sub
        c1 = p0 + (span * (c + 1)) // n_sub
        if c0 >= c1:
            continue
        s = find_segment(seg_start, n_seg, c0)
        a, b = local_pair(s, c0 - seg_start[s], seg_a, seg_na, seg_b, seg_nb)
        # this sub-chunk's own region of the scratch arrays starts at c0 - p0
        _, _, _, _, n = walk_pairs(
            c0, c1, s, a, b, seg_start, seg_a, seg_na, seg_b, seg_nb, seg_rule, members,
            groups, source_codes, link_type_code, scratch_l, scratch_r, scratch_k, c0 - p0,
            c1 - c0,
        )  # fmt: skip
        sub_counts[c] = n


def _compact(p0, p1, n_sub, scratch_l, scratch_r, scratch_k, sub_counts, dest, ol, orr, ok):
    span = p1 - p0
    for c in numba.prange(n_sub):
        src = (span * c) // n_sub
        d = dest[c]
        for t in range(sub_counts[c]):
            ol[d + t] = scratch_l[src + t]
            orr[d + t] = scratch_r[src + t]
            ok[d + t] = scratch_k[src + t]


_CPU_LAUNCHERS: dict[str, object] = {}


def _cpu_launcher(name):
    """The compiled CPU build of launcher ``name`` (compiled once, on first use)."""
    if name not in _CPU_LAUNCHERS:
        fn = {"count": _count_range, "enumerate": _enumerate_range, "compact": _compact}[name]
        _CPU_LAUNCHERS[name] = cpu_jit(parallel=True)(retarget_launcher(fn, "cpu"))
    return _CPU_LAUNCHERS[name]


def _n_sub(span: int) -> int:
    # enough sub-chunks to balance skewed segments across threads, each big enough to amortise
    # its one binary search
    return int(max(1, min(span // 4096 + 1, numba.get_num_threads() * 8)))


def plan_arrays(plan) -> tuple:
    """The kernel arrays of a plan, in launcher argument order."""
    return (
        plan.seg_start,
        plan.seg_a,
        plan.seg_na,
        plan.seg_b,
        plan.seg_nb,
        plan.seg_rule,
        plan.members,
        plan.groups,
        plan.source_codes,
        np.int64(plan.link_type_code),
    )


def count_range_cpu(plan, p0: int, p1: int) -> np.ndarray:
    """Emitted pairs per rule among pair indices ``[p0, p1)`` of ``plan`` (int64[n_rules]).
    Each sub-chunk decodes its first index once and then walks consecutive pairs."""
    n_rules = plan.n_rules
    if p1 <= p0 or plan.n_segments == 0:
        return np.zeros(n_rules, np.int64)
    n_sub = _n_sub(p1 - p0)
    counts = np.zeros((n_sub, max(n_rules, 1)), np.int64)
    _cpu_launcher("count")(np.int64(p0), np.int64(p1), n_sub, *plan_arrays(plan), counts)
    return counts.sum(axis=0)[:n_rules]


def enumerate_range_cpu(plan, p0: int, p1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The emitted pairs among pair indices ``[p0, p1)``: ``(left, right, match_key)``, int32
    record indices ``left < right`` and int32 rule index, in pair-index order (deterministic,
    independent of the thread count). Uses 12 bytes of scratch per index in the range."""
    if p1 <= p0 or plan.n_segments == 0:
        empty = np.zeros(0, np.int32)
        return empty, empty.copy(), empty.copy()
    span = int(p1 - p0)
    n_sub = _n_sub(span)
    scratch_l = np.empty(span, np.int32)
    scratch_r = np.empty(span, np.int32)
    scratch_k = np.empty(span, np.int32)
    sub_counts = np.zeros(n_sub, np.int64)
    _cpu_launcher("enumerate")(
        np.int64(p0),
        np.int64(p1),
        n_sub,
        *plan_arrays(plan),
        scratch_l,
        scratch_r,
        scratch_k,
        sub_counts,
    )
    dest = np.zeros(n_sub, np.int64)
    np.cumsum(sub_counts[:-1], out=dest[1:])
    total = int(sub_counts.sum())
    if total == span:  # nothing filtered: the scratch is the answer
        return scratch_l, scratch_r, scratch_k
    left = np.empty(total, np.int32)
    right = np.empty(total, np.int32)
    key = np.empty(total, np.int32)
    _cpu_launcher("compact")(
        np.int64(p0),
        np.int64(p1),
        n_sub,
        scratch_l,
        scratch_r,
        scratch_k,
        sub_counts,
        dest,
        left,
        right,
        key,
    )
    return left, right, key


__all__ = [
    "LINK_AND_DEDUPE",
    "LINK_DEDUPE_ONLY",
    "LINK_ONLY",
    "LINK_TYPE_CODES",
    "advance_local",
    "count_range_cpu",
    "decode_pair",
    "enumerate_range_cpu",
    "find_segment",
    "local_pair",
    "oriented_pair",
    "pair_is_emitted",
    "triangle_row",
    "triangle_start",
]
