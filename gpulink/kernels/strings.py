"""String comparator kernel bodies: Jaro, Jaro-Winkler, Levenshtein, Damerau-Levenshtein, Jaccard.

Single source, two targets (see :mod:`gpulink.kernels._targets`): every function here is a plain
Python *kernel body* that ``numba.njit`` compiles for the CPU and ``numba.cuda.jit(device=True)``
compiles for the GPU. They allocate nothing.

Strings are Unicode code points: ``chars`` is a ``uint32`` buffer and a string is the half-open
range ``chars[start:end]``. Every comparator has the signature ::

    f(a, a0, a1, b, b0, b1, [max_dist,] scratch)

where ``a`` and ``b`` may be the same buffer, and ``scratch`` is a 1-D ``int32`` array owned by
the calling thread, at least :func:`scratch_ints_needed` ``(max_len)`` long for strings of up to
``max_len`` code points. The fast paths (Jaro and Levenshtein when the shorter string has at
most 64 code points, Jaccard when both have at most 64) work in registers, with ``uint64`` bit
masks; on the CPU, Jaro and Levenshtein also keep a table of the pattern's match masks in the
first :data:`PATTERN_TABLE_INTS` ints of scratch when it has that many (CPU launchers give it
:func:`cpu_scratch_ints`). The long-string paths use scratch as DP rows or match flags.

Semantics (the oracles the tests compare against, pair by pair):

* :func:`jaro`, :func:`jaro_winkler`: ``rapidfuzz.distance.Jaro`` / ``JaroWinkler``
  ``.similarity`` to the last bit (same float operation order). Both empty: 1.0; exactly one
  empty: 0.0. DuckDB's ``jaro_similarity`` / ``jaro_winkler_similarity`` agree everywhere except
  two empty strings, which DuckDB scores 0.0.
* :func:`levenshtein`: unit-cost edit distance (``rapidfuzz.distance.Levenshtein``, DuckDB
  ``levenshtein``).
* :func:`damerau_levenshtein`: the *unrestricted* Damerau-Levenshtein distance (transpositions of
  non-adjacent characters with edits in between allowed), as ``rapidfuzz.distance.
  DamerauLevenshtein`` and DuckDB ``damerau_levenshtein``; not the restricted OSA distance.
* Both distances take ``max_dist``: when the distance exceeds it they may stop early and return
  ``max_dist + 1`` (never anything else above ``max_dist``); ``max_dist < 0`` means no bound.
* :func:`jaccard`: ``|set(a) & set(b)| / |set(a) | set(b)|`` over code points, as DuckDB
  ``jaccard``. DuckDB refuses empty arguments (an error that aborts the query); a kernel cannot
  raise, so an empty string on either side gives NaN ("undefined"), which fails every threshold.
"""

from __future__ import annotations

import numpy as np

from gpulink.kernels._targets import kernel_body

U0 = np.uint64(0)
U1 = np.uint64(1)
ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)

#: Longest string (code points) a fast path keeps in one 64-bit mask.
WORD = 64

#: True in the GPU build of every body (set by :mod:`gpulink.kernels._targets`): lets a body
#: choose, at compile time, the form that suits the target.
ON_GPU = False

#: Code points the CPU's pattern table (Jaro, Levenshtein) covers; a pattern with others scans.
TABLE_CODE_POINTS = 256

#: Scratch ints of the CPU's pattern table: a 64-bit match mask per code point below 256.
PATTERN_TABLE_INTS = 2 * TABLE_CODE_POINTS

#: Jaro match windows at least this wide use the pattern table (on the CPU).
TABLE_MIN_WINDOW = 5

#: Levenshtein patterns (after trimming common affixes) at least this long use the table.
TABLE_MIN_PATTERN = 4


def scratch_ints_needed(max_len: int) -> int:
    """int32 scratch entries per thread sufficient for every comparator on strings <= ``max_len``.

    The largest user is :func:`damerau_levenshtein` (four rows of ``len + 2``).

    >>> scratch_ints_needed(10)
    48
    """
    max_len = max(int(max_len), 0)
    return 4 * max_len + 8


def cpu_scratch_ints(max_len: int) -> int:
    """Scratch ints per CPU thread: :func:`scratch_ints_needed` and room for the Jaro pattern
    table (the CPU's fast path for long strings; without the room the bodies do without)."""
    return max(scratch_ints_needed(max_len), PATTERN_TABLE_INTS)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@kernel_body
def common_prefix(a, a0, la, b, b0, lb):
    """Length of the longest common prefix of ``a[a0:a0+la]`` and ``b[b0:b0+lb]``."""
    n = la if la < lb else lb
    k = 0
    while k < n and a[a0 + k] == b[b0 + k]:
        k += 1
    return k


@kernel_body
def common_suffix(a, a0, la, b, b0, lb):
    """Length of the longest common suffix of ``a[a0:a0+la]`` and ``b[b0:b0+lb]``."""
    n = la if la < lb else lb
    k = 0
    while k < n and a[a0 + la - 1 - k] == b[b0 + lb - 1 - k]:
        k += 1
    return k


@kernel_body
def _bit(i):
    """``1 << i`` as uint64 (``0 <= i < 64``)."""
    return U1 << np.uint64(i)


@kernel_body
def _lowest_bit(x):
    """The lowest set bit of uint64 ``x`` (0 if none): ``x & -x``."""
    return x & (~x + U1)


@kernel_body
def popcount(x):
    """Number of set bits of uint64 ``x`` (SWAR; LLVM and NVVM turn it into one instruction)."""
    x = x - ((x >> U1) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@kernel_body
def _window_matches(p, p0, lp, c, j, bound):
    """Bit ``i`` set where ``p[p0 + i] == c`` and ``|i - j| <= bound`` (``lp <= 64``).

    Branch-free: names are short and mostly differ, so data-dependent branches mispredict.
    """
    lo = j - bound
    if lo < 0:
        lo = 0
    hi = j + bound + 1
    if hi > lp:
        hi = lp
    x = U0
    for i in range(lo, hi):
        x |= np.uint64(p[p0 + i] == c) << np.uint64(i)
    return x


# --------------------------------------------------------------------------------------------
# Jaro / Jaro-Winkler
# --------------------------------------------------------------------------------------------


@kernel_body
def _build_pattern_table(p, p0, lp, scratch):
    """Clear the first :data:`PATTERN_TABLE_INTS` entries of ``scratch`` and write there the
    64-bit match mask of every code point below 256 of ``p[p0:p0+lp]`` (``lp <= 64``): bit ``i``
    of entry ``c`` (int32 words ``2c`` and ``2c + 1``) is set when ``p[p0 + i] == c``.

    Returns False, and the table must not be used, when ``p`` holds a code point of 256 or more.
    Clearing the whole table (a 2 KiB memset) costs less than tracking which entries are live.
    """
    for k in range(PATTERN_TABLE_INTS):
        scratch[k] = 0
    for i in range(lp):
        c = p[p0 + i]
        if c >= TABLE_CODE_POINTS:
            return False
        if i < 32:
            scratch[2 * c] |= np.int32(np.uint32(1) << np.uint32(i))
        else:
            scratch[2 * c + 1] |= np.int32(np.uint32(1) << np.uint32(i - 32))
    return True


@kernel_body
def _pattern_row(c, scratch):
    """Where ``c`` occurs in the pattern of :func:`_build_pattern_table`, as a uint64 mask."""
    if c >= TABLE_CODE_POINTS:
        return U0
    return np.uint64(np.uint32(scratch[2 * c])) | (
        np.uint64(np.uint32(scratch[2 * c + 1])) << np.uint64(32)
    )


@kernel_body
def _first_window(bound):
    """The match window of text position 0, ``[0, bound]``, as a uint64 mask (see
    :func:`_next_window`)."""
    if bound + 1 >= WORD:
        return ALL_ONES
    return (U1 << np.uint64(bound + 1)) - U1


@kernel_body
def _next_window(window, j, bound):
    """The window of position ``j + 1`` from that of ``j``: positions ``[j - bound, j + bound]``
    clipped to ``[0, 63]`` slide up by one; the lower edge stays at 0 while ``j < bound``."""
    if j < bound:
        return (window << U1) | U1
    return window << U1


@kernel_body
def _jaro_match_short(p, p0, lp, t, t0, lt, bound, scratch):
    """Matches and transpositions (halved later) of Jaro with ``lp <= 64``, ``lt`` unbounded.

    Greedy matching as rapidfuzz: each text character ``t[j]`` takes the first unmatched pattern
    position ``i`` with ``|i - j| <= bound`` holding the same character (the lowest set bit of
    its window match mask, minus the matched positions). Matched pattern positions live in one
    uint64; matched text positions too when ``lt <= 64``, else the greedy pass is replayed to
    visit them in order. On the CPU the window masks come from a per-pattern table in
    ``scratch`` (when it has :data:`PATTERN_TABLE_INTS` entries and the window is wide), ANDed
    with a sliding window mask; otherwise (GPU, narrow windows) from comparing the window's
    characters. Returns ``(m, transpositions)``.
    """
    table = (not ON_GPU) and 2 * bound + 1 >= TABLE_MIN_WINDOW
    table = table and scratch.shape[0] >= PATTERN_TABLE_INTS
    if table:
        table = _build_pattern_table(p, p0, lp, scratch)
    window = _first_window(bound)
    p_flag = U0
    t_flag = U0
    j_end = lp + bound
    if j_end > lt:
        j_end = lt
    if lt <= WORD:
        for j in range(j_end):
            c = t[t0 + j]
            if table:
                x = _pattern_row(c, scratch) & window
                window = _next_window(window, j, bound)
            else:
                x = _window_matches(p, p0, lp, c, j, bound)
            low = _lowest_bit(x & ~p_flag)
            p_flag |= low
            t_flag |= np.uint64(low != U0) << np.uint64(j)
        m = popcount(p_flag)
        trans = 0
        # The k-th matched text character pairs with the k-th matched pattern character.
        for _ in range(m):
            tb = _lowest_bit(t_flag)
            pb = _lowest_bit(p_flag)
            trans += p[p0 + popcount(pb - U1)] != t[t0 + popcount(tb - U1)]
            t_flag ^= tb
            p_flag ^= pb
        return m, trans
    for j in range(j_end):
        c = t[t0 + j]
        if table:
            x = _pattern_row(c, scratch) & window
            window = _next_window(window, j, bound)
        else:
            x = _window_matches(p, p0, lp, c, j, bound)
        p_flag |= _lowest_bit(x & ~p_flag)
    m = popcount(p_flag)
    if m == 0:
        return 0, 0
    # Long text: replay the greedy pass to meet the matched text characters in order.
    trans = 0
    q_flag = U0
    rest = p_flag
    window = _first_window(bound)
    for j in range(j_end):
        c = t[t0 + j]
        if table:
            x = _pattern_row(c, scratch) & window
            window = _next_window(window, j, bound)
        else:
            x = _window_matches(p, p0, lp, c, j, bound)
        low = _lowest_bit(x & ~q_flag)
        if low != U0:
            q_flag |= low
            pb = _lowest_bit(rest)
            trans += p[p0 + popcount(pb - U1)] != c
            rest ^= pb
    return m, trans


@kernel_body
def _jaro_match_long(p, p0, lp, t, t0, lt, bound, scratch):
    """As :func:`_jaro_match_short` for any lengths, with match flags in ``scratch[:lp+lt]``."""
    for i in range(lp + lt):
        scratch[i] = 0
    m = 0
    j_end = lp + bound
    if j_end > lt:
        j_end = lt
    for j in range(j_end):
        c = t[t0 + j]
        lo = j - bound
        if lo < 0:
            lo = 0
        hi = j + bound + 1
        if hi > lp:
            hi = lp
        for i in range(lo, hi):
            if scratch[i] == 0 and p[p0 + i] == c:
                scratch[i] = 1
                scratch[lp + j] = 1
                m += 1
                break
    trans = 0
    k = 0
    for j in range(j_end):
        if scratch[lp + j] != 0:
            while scratch[k] == 0:
                k += 1
            if p[p0 + k] != t[t0 + j]:
                trans += 1
            k += 1
    return m, trans


@kernel_body
def _jaro_match(p, p0, lp, t, t0, lt, bound, scratch):
    """(matches, transpositions) with ``lp <= lt``: registers when ``lp <= 64``, else scratch."""
    if lp <= WORD:
        return _jaro_match_short(p, p0, lp, t, t0, lt, bound, scratch)
    return _jaro_match_long(p, p0, lp, t, t0, lt, bound, scratch)


@kernel_body
def jaro(a, a0, a1, b, b0, b1, scratch):
    """Jaro similarity of code-point strings ``a[a0:a1]`` and ``b[b0:b1]``, in [0, 1].

    With ``m`` matching characters (equal characters at most ``max(|a|, |b|) // 2 - 1``
    positions apart, matched greedily) and ``t`` half the number of matched characters out of
    order: ``(m/|a| + m/|b| + (m - t)/m) / 3``; 0 when ``m = 0``. Both empty: 1.0; one empty: 0.0;
    two single characters: 1.0 if equal else 0.0 (as rapidfuzz).
    """
    la = a1 - a0
    lb = b1 - b0
    if la == 0 and lb == 0:
        return 1.0
    if la == 0 or lb == 0:
        return 0.0
    if la == 1 and lb == 1:
        return 1.0 if a[a0] == b[b0] else 0.0
    bound = (la if la > lb else lb) // 2 - 1
    # A common prefix is matched in place and never transposed: count it and skip it.
    pre = common_prefix(a, a0, la, b, b0, lb)
    ra = la - pre
    rb = lb - pre
    m = pre
    trans = 0
    if ra > 0 and rb > 0:
        # The pattern (bit-mask side) is the shorter rest. Calls rather than swapped array
        # variables: on the CPU an array variable costs reference counting.
        if ra <= rb:
            mm, trans = _jaro_match(a, a0 + pre, ra, b, b0 + pre, rb, bound, scratch)
        else:
            mm, trans = _jaro_match(b, b0 + pre, rb, a, a0 + pre, ra, bound, scratch)
        m += mm
    if m == 0:
        return 0.0
    trans = trans // 2
    sim = m / la + m / lb
    sim += (m - trans) / m
    return sim / 3.0


@kernel_body
def jaro_winkler(a, a0, a1, b, b0, b1, scratch):
    """Jaro-Winkler similarity: ``j + l * 0.1 * (1 - j)`` when the Jaro similarity ``j > 0.7``.

    ``l`` is the common prefix length, at most 4 (rapidfuzz ``JaroWinkler.similarity`` with the
    default prefix weight 0.1, DuckDB ``jaro_winkler_similarity``).
    """
    return winkler_boost(jaro(a, a0, a1, b, b0, b1, scratch), a, a0, a1 - a0, b, b0, b1 - b0)


@kernel_body
def winkler_boost(sim, a, a0, la, b, b0, lb):
    """Winkler's adjustment of Jaro similarity ``sim``: ``sim + l * 0.1 * (1 - sim)`` when
    ``sim > 0.7``, ``l`` the common prefix length capped at 4; at most 1.0."""
    if sim > 0.7:
        n = la if la < lb else lb
        if n > 4:
            n = 4
        pre = 0
        while pre < n and a[a0 + pre] == b[b0 + pre]:
            pre += 1
        sim += pre * 0.1 * (1.0 - sim)
        if sim > 1.0:
            sim = 1.0
    return sim


# --------------------------------------------------------------------------------------------
# Levenshtein
# --------------------------------------------------------------------------------------------


@kernel_body
def _levenshtein_bitparallel(p, p0, lp, t, t0, lt, max_dist, scratch):
    """Myers/Hyyrö bit-parallel Levenshtein distance, pattern ``lp`` in 1..64, text any length.

    Column ``j`` of the DP matrix is held as vertical delta masks ``VP``/``VN``; the pattern
    match mask of ``t[j]`` comes from the pattern table in ``scratch`` (CPU, patterns of at
    least :data:`TABLE_MIN_PATTERN` code points, as in Jaro) or is built from the code points.
    Stops with ``max_dist + 1`` once the distance cannot come back under ``max_dist`` (it falls
    by at most one per remaining text character).
    """
    table = (not ON_GPU) and lp >= TABLE_MIN_PATTERN
    table = table and scratch.shape[0] >= PATTERN_TABLE_INTS
    if table:
        table = _build_pattern_table(p, p0, lp, scratch)
    vp = ALL_ONES >> np.uint64(WORD - lp)
    vn = U0
    last = _bit(lp - 1)
    dist = lp
    for j in range(lt):
        c = t[t0 + j]
        if table:
            x = _pattern_row(c, scratch)
        else:
            x = U0
            for i in range(lp):
                x |= np.uint64(p[p0 + i] == c) << np.uint64(i)
        d0 = (((x & vp) + vp) ^ vp) | x | vn
        hp = vn | ~(d0 | vp)
        hn = d0 & vp
        if (hp & last) != U0:
            dist += 1
        elif (hn & last) != U0:
            dist -= 1
        if max_dist >= 0 and dist - (lt - 1 - j) > max_dist:
            return max_dist + 1
        hp = (hp << U1) | U1
        hn = hn << U1
        vp = hn | ~(d0 | hp)
        vn = hp & d0
    return dist


@kernel_body
def _levenshtein_dp(p, p0, lp, t, t0, lt, max_dist, scratch):
    """Row-by-row Levenshtein DP with one row of ``lp + 1`` cells in ``scratch``.

    Row minima never decrease, so a row whose minimum exceeds ``max_dist`` ends the search.
    """
    for i in range(lp + 1):
        scratch[i] = i
    for j in range(lt):
        c = t[t0 + j]
        diag = scratch[0]
        scratch[0] = j + 1
        row_min = j + 1
        for i in range(1, lp + 1):
            up = scratch[i]
            if p[p0 + i - 1] == c:
                v = diag
            else:
                v = diag
                if up < v:
                    v = up
                if scratch[i - 1] < v:
                    v = scratch[i - 1]
                v += 1
            diag = up
            scratch[i] = v
            if v < row_min:
                row_min = v
        if max_dist >= 0 and row_min > max_dist:
            return max_dist + 1
    return np.int64(scratch[lp])


@kernel_body
def levenshtein(a, a0, a1, b, b0, b1, max_dist, scratch):
    """Levenshtein distance (unit insert, delete, substitute) between ``a[a0:a1]``, ``b[b0:b1]``.

    Returns ``max_dist + 1`` when the distance exceeds ``max_dist >= 0``; ``max_dist < 0``: exact.
    Bit-parallel (no scratch) when the shorter string, after trimming the common prefix and
    suffix, has at most 64 code points; otherwise a DP row in ``scratch`` (``len + 1`` ints).
    """
    la = a1 - a0
    lb = b1 - b0
    if la <= lb:
        return _levenshtein_ordered(a, a0, la, b, b0, lb, max_dist, scratch)
    return _levenshtein_ordered(b, b0, lb, a, a0, la, max_dist, scratch)


@kernel_body
def _levenshtein_ordered(p, p0, lp, t, t0, lt, max_dist, scratch):
    """:func:`levenshtein` with the pattern ``p`` no longer than the text ``t``."""
    if max_dist >= 0 and lt - lp > max_dist:
        return max_dist + 1
    # A common prefix or suffix never changes the distance.
    pre = common_prefix(p, p0, lp, t, t0, lt)
    p0 += pre
    t0 += pre
    lp -= pre
    lt -= pre
    suf = common_suffix(p, p0, lp, t, t0, lt)
    lp -= suf
    lt -= suf
    if lp == 0:
        d = lt
    elif max_dist == 1:
        # One edit left after trimming is exactly one substituted character.
        d = 1 if lp == 1 and lt == 1 else 2
    elif lp <= WORD:
        d = _levenshtein_bitparallel(p, p0, lp, t, t0, lt, max_dist, scratch)
    else:
        d = _levenshtein_dp(p, p0, lp, t, t0, lt, max_dist, scratch)
    if max_dist >= 0 and d > max_dist:
        return max_dist + 1
    return d


# --------------------------------------------------------------------------------------------
# Damerau-Levenshtein (unrestricted)
# --------------------------------------------------------------------------------------------


@kernel_body
def _damerau_zhao(s, s0, ls, t, t0, lt, max_dist, scratch):
    """Unrestricted Damerau-Levenshtein distance by Zhao & Sahni's linear-space algorithm.

    Rows run over ``s``, columns over ``t``. ``scratch`` holds four arrays of ``lt + 2`` ints:
    the current row ``R``, the previous row ``R1``, ``FR`` (the DP value saved at each column's
    last match) and ``K``: for column ``j``, the last row whose character equals ``t[j-1]``
    (the algorithm's ``last_row_id`` map, re-indexed by column so no hash map is needed).
    Index ``-1`` of ``R``/``R1``/``FR`` is stored at offset 0. Row minima never decrease (a
    transposition costs at least as much as the rows it skips), so a row whose minimum exceeds
    ``max_dist >= 0`` ends the search with ``max_dist + 1``.
    """
    w = lt + 2
    big = (ls if ls > lt else lt) + 1
    r = 0  # offset of R[-1]
    r1 = w  # offset of R1[-1]
    fr = 2 * w
    kk = 3 * w
    scratch[r] = big
    for j in range(lt + 1):
        scratch[r + 1 + j] = j
    for j in range(w):
        scratch[r1 + j] = big
        scratch[fr + j] = big
        scratch[kk + j] = -1
    for i in range(1, ls + 1):
        tmp = r
        r = r1
        r1 = tmp
        last_col = -1
        last_i2l1 = scratch[r + 1]
        scratch[r + 1] = i
        tt = big
        row_min = i
        ci = s[s0 + i - 1]
        for j in range(1, lt + 1):
            cj = t[t0 + j - 1]
            up = scratch[r1 + 1 + j] + 1
            left = scratch[r + j] + 1
            if ci == cj:
                diag = scratch[r1 + j]
            else:
                diag = scratch[r1 + j] + 1
            v = diag
            if left < v:
                v = left
            if up < v:
                v = up
            if ci == cj:
                last_col = j
                scratch[fr + 1 + j] = scratch[r1 + j - 1]
                tt = last_i2l1
                scratch[kk + j] = i
            else:
                k = scratch[kk + j]
                if j - last_col == 1:
                    tr = scratch[fr + 1 + j] + (i - k)
                    if tr < v:
                        v = tr
                elif i - k == 1:
                    tr = tt + (j - last_col)
                    if tr < v:
                        v = tr
            last_i2l1 = scratch[r + 1 + j]
            scratch[r + 1 + j] = v
            if v < row_min:
                row_min = v
        if max_dist >= 0 and row_min > max_dist:
            return max_dist + 1
    return np.int64(scratch[r + 1 + lt])


@kernel_body
def damerau_levenshtein(a, a0, a1, b, b0, b1, max_dist, scratch):
    """Unrestricted Damerau-Levenshtein distance between ``a[a0:a1]`` and ``b[b0:b1]``.

    Insertions, deletions, substitutions and transpositions of two characters, each costing 1,
    with the transposed characters allowed to be edited around (so ``"CA" -> "ABC"`` is 2, where
    the restricted OSA distance gives 3). Returns ``max_dist + 1`` when the distance exceeds
    ``max_dist >= 0``. Uses ``4 * (min(|a|, |b|) + 2)`` ints of ``scratch``.
    """
    la = a1 - a0
    lb = b1 - b0
    # Columns over the shorter string keep the scratch rows short; the distance is symmetric.
    if la >= lb:
        return _damerau_ordered(a, a0, la, b, b0, lb, max_dist, scratch)
    return _damerau_ordered(b, b0, lb, a, a0, la, max_dist, scratch)


@kernel_body
def _damerau_ordered(s, s0, ls, t, t0, lt, max_dist, scratch):
    """:func:`damerau_levenshtein` with the columns string ``t`` no longer than ``s``."""
    if max_dist >= 0 and ls - lt > max_dist:
        return max_dist + 1
    pre = common_prefix(s, s0, ls, t, t0, lt)
    s0 += pre
    t0 += pre
    ls -= pre
    lt -= pre
    suf = common_suffix(s, s0, ls, t, t0, lt)
    ls -= suf
    lt -= suf
    if lt == 0:
        d = ls
    elif max_dist == 1:
        # With the common prefix and suffix gone, a distance of 1 leaves exactly one
        # substituted character or one swapped adjacent pair (a deletion leaves lt == 0).
        d = 2
        if ls == 1 and lt == 1:
            d = 1
        elif ls == 2 and lt == 2 and s[s0] == t[t0 + 1] and s[s0 + 1] == t[t0]:
            d = 1
    else:
        d = _damerau_zhao(s, s0, ls, t, t0, lt, max_dist, scratch)
    if max_dist >= 0 and d > max_dist:
        return max_dist + 1
    return d


# --------------------------------------------------------------------------------------------
# Jaccard (character sets)
# --------------------------------------------------------------------------------------------


@kernel_body
def _sift_down(s, base, start, end):
    """Restore the max-heap property of ``s[base:base+end]`` below ``start``."""
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and s[base + child] < s[base + child + 1]:
            child += 1
        if s[base + root] < s[base + child]:
            tmp = s[base + root]
            s[base + root] = s[base + child]
            s[base + child] = tmp
            root = child
        else:
            return


@kernel_body
def _heapsort(s, base, n):
    """Sort ``s[base:base+n]`` in place (heapsort: O(n log n), no recursion, no allocation)."""
    for start in range((n - 2) // 2, -1, -1):
        _sift_down(s, base, start, n)
    for end in range(n - 1, 0, -1):
        tmp = s[base]
        s[base] = s[base + end]
        s[base + end] = tmp
        _sift_down(s, base, 0, end)


@kernel_body
def _jaccard_sorted(a, a0, la, b, b0, lb, scratch):
    """Character-set Jaccard for long strings: sort copies in ``scratch``, merge the sets."""
    for i in range(la):
        scratch[i] = a[a0 + i]
    for i in range(lb):
        scratch[la + i] = b[b0 + i]
    _heapsort(scratch, 0, la)
    _heapsort(scratch, la, lb)
    i = 0
    j = 0
    inter = 0
    union = 0
    while i < la or j < lb:
        if j >= lb or (i < la and scratch[i] < scratch[la + j]):
            c = scratch[i]
            union += 1
            while i < la and scratch[i] == c:
                i += 1
        elif i >= la or scratch[la + j] < scratch[i]:
            c = scratch[la + j]
            union += 1
            while j < lb and scratch[la + j] == c:
                j += 1
        else:
            c = scratch[i]
            union += 1
            inter += 1
            while i < la and scratch[i] == c:
                i += 1
            while j < lb and scratch[la + j] == c:
                j += 1
    return inter / union


@kernel_body
def _set_masks(a, a0, la, b, b0, lb):
    """For ``la <= 64``: (bit ``i`` set where ``a[i]`` occurs first at ``i``, bit ``i`` set where
    ``a[i]`` occurs in ``b``), by branch-free scans."""
    first = U0
    in_b = U0
    for i in range(la):
        c = a[a0 + i]
        seen = False
        for k in range(i):
            seen = seen | (a[a0 + k] == c)
        found = False
        for k in range(lb):
            found = found | (b[b0 + k] == c)
        first |= np.uint64(not seen) << np.uint64(i)
        in_b |= np.uint64(found) << np.uint64(i)
    return first, in_b


@kernel_body
def _low_code_point_set(a, a0, la):
    """The set of code points of ``a[a0:a0+la]`` as a 256-bit mask in four uint64 words, and
    whether every code point is below 256 (else the mask is incomplete and must not be used)."""
    w0 = U0
    w1 = U0
    w2 = U0
    w3 = U0
    for i in range(la):
        c = a[a0 + i]
        if c >= TABLE_CODE_POINTS:
            return w0, w1, w2, w3, False
        bit = U1 << np.uint64(c & 63)
        word = c >> 6
        if word == 0:
            w0 |= bit
        elif word == 1:
            w1 |= bit
        elif word == 2:
            w2 |= bit
        else:
            w3 |= bit
    return w0, w1, w2, w3, True


@kernel_body
def jaccard(a, a0, a1, b, b0, b1, scratch):
    """Jaccard similarity of the *sets* of code points of ``a[a0:a1]`` and ``b[b0:b1]``.

    ``|A & B| / |A | B|`` (DuckDB ``jaccard``: ``"aa"`` vs ``"a"`` is 1.0). NaN when either
    string is empty (DuckDB raises an error there). When every code point is below 256 the
    sets are 256-bit masks in registers (linear time); otherwise strings of at most 64 code
    points are scanned in place and longer ones sorted in ``scratch`` (``|a| + |b|`` ints).
    """
    la = a1 - a0
    lb = b1 - b0
    if la == 0 or lb == 0:
        return np.nan
    a_0, a_1, a_2, a_3, a_ok = _low_code_point_set(a, a0, la)
    if a_ok:
        b_0, b_1, b_2, b_3, b_ok = _low_code_point_set(b, b0, lb)
        if b_ok:
            inter = popcount(a_0 & b_0) + popcount(a_1 & b_1)
            inter += popcount(a_2 & b_2) + popcount(a_3 & b_3)
            union = popcount(a_0 | b_0) + popcount(a_1 | b_1)
            union += popcount(a_2 | b_2) + popcount(a_3 | b_3)
            return inter / union
    if la > WORD or lb > WORD:
        return _jaccard_sorted(a, a0, la, b, b0, lb, scratch)
    first_a, a_in_b = _set_masks(a, a0, la, b, b0, lb)
    first_b, _unused = _set_masks(b, b0, lb, b, b0, 0)
    inter = popcount(first_a & a_in_b)
    return inter / (popcount(first_a) + popcount(first_b) - inter)
