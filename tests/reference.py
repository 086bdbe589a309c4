"""Naive, obviously-correct Python references for every comparator (the test oracles' oracle).

Written from the textbook definitions, with full DP tables and no shortcuts, independent of the
kernels in :mod:`gpulink.kernels.strings` and :mod:`gpulink.kernels.numeric`.
"""

from __future__ import annotations

import math


def jaro(a: str, b: str) -> float:
    """Jaro similarity; conventions of rapidfuzz: both empty 1.0, one empty 0.0, and two single
    characters compare by equality (the window formula would give -1)."""
    la, lb = len(a), len(b)
    if la == 0 and lb == 0:
        return 1.0
    if la == 0 or lb == 0:
        return 0.0
    if la == 1 and lb == 1:
        return 1.0 if a == b else 0.0
    window = max(la, lb) // 2 - 1
    a_matched = [False] * la
    b_matched = [False] * lb
    m = 0
    for i in range(la):
        for j in range(max(0, i - window), min(lb, i + window + 1)):
            if not b_matched[j] and a[i] == b[j]:
                a_matched[i] = b_matched[j] = True
                m += 1
                break
    if m == 0:
        return 0.0
    a_seq = [a[i] for i in range(la) if a_matched[i]]
    b_seq = [b[j] for j in range(lb) if b_matched[j]]
    t = sum(x != y for x, y in zip(a_seq, b_seq)) // 2
    sim = m / la + m / lb
    sim += (m - t) / m
    return sim / 3.0


def jaro_winkler(a: str, b: str, prefix_weight: float = 0.1) -> float:
    """Jaro-Winkler: boost ``l * w * (1 - jaro)`` when jaro > 0.7, ``l`` = common prefix <= 4."""
    sim = jaro(a, b)
    if sim > 0.7:
        prefix = 0
        for x, y in zip(a[:4], b[:4]):
            if x != y:
                break
            prefix += 1
        sim += prefix * prefix_weight * (1.0 - sim)
        sim = min(sim, 1.0)
    return sim


def levenshtein(a: str, b: str) -> int:
    """Full (len(a)+1) x (len(b)+1) Wagner-Fischer table."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
    return d[len(a)][len(b)]


def damerau_levenshtein(a: str, b: str) -> int:
    """Unrestricted Damerau-Levenshtein, Lowrance-Wagner full table with the ``da`` map
    (last row of each character), as in the Wikipedia pseudocode."""
    la, lb = len(a), len(b)
    big = la + lb
    da: dict[str, int] = {}
    d = [[0] * (lb + 2) for _ in range(la + 2)]
    d[0][0] = big
    for i in range(la + 1):
        d[i + 1][0] = big
        d[i + 1][1] = i
    for j in range(lb + 1):
        d[0][j + 1] = big
        d[1][j + 1] = j
    for i in range(1, la + 1):
        db = 0
        for j in range(1, lb + 1):
            k = da.get(b[j - 1], 0)
            ell = db
            if a[i - 1] == b[j - 1]:
                cost = 0
                db = j
            else:
                cost = 1
            d[i + 1][j + 1] = min(
                d[i][j] + cost,
                d[i + 1][j] + 1,
                d[i][j + 1] + 1,
                d[k][ell] + (i - k - 1) + 1 + (j - ell - 1),
            )
        da[a[i - 1]] = i
    return d[la + 1][lb + 1]


def jaccard(a: str, b: str) -> float:
    """Character-set Jaccard; NaN for an empty argument (DuckDB raises there)."""
    if not a or not b:
        return math.nan
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb)


def bounded(distance: int, max_dist: int) -> int:
    """The early-exit convention: ``max_dist + 1`` for anything above ``max_dist >= 0``."""
    return distance if max_dist < 0 or distance <= max_dist else max_dist + 1


def great_circle_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Splink's SQL, term by term: law of cosines on radians, clamped, times 6371, then FLOAT."""
    import numpy as np

    def rad(x):
        return x * (math.pi / 180.0)

    c = math.sin(rad(lat1)) * math.sin(rad(lat2)) + math.cos(rad(lat1)) * math.cos(
        rad(lat2)
    ) * math.cos(rad(lng2 - lng1))
    c = max(-1.0, min(1.0, c))
    return float(np.float32(math.acos(c) * 6371))


def bridges(n_nodes: int, edges_l, edges_r) -> list[bool]:
    """Per edge, whether it is a bridge, from the definition: drop the edge (by position, so a
    parallel edge stays) and search whether its two ends are still connected."""
    edges = list(zip((int(a) for a in edges_l), (int(b) for b in edges_r)))
    out = []
    for drop, (a, b) in enumerate(edges):
        adjacency: list[list[int]] = [[] for _ in range(n_nodes)]
        for k, (x, y) in enumerate(edges):
            if k != drop:
                adjacency[x].append(y)
                adjacency[y].append(x)
        seen, todo = {a}, [a]
        while todo:
            for y in adjacency[todo.pop()]:
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        out.append(b not in seen)
    return out
