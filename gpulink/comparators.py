"""Pairwise string comparators, rapidfuzz style: ``f(a, b, *, backend="auto")``.

Pair ``k`` compares ``a[k]`` with ``b[k]``. ``a`` and ``b`` are equal-length sequences of strings:
lists, numpy arrays, pandas Series, pyarrow Arrays or ChunkedArrays (polars Series too). None or
NaN on either side gives NaN for that pair. Results are float64 numpy arrays, computed by the
same kernels that score record pairs (:mod:`gpulink.kernels.strings`), on every CPU core
(``backend="cpu"``) or on the GPU (``backend="gpu"``; ``"auto"`` picks the GPU when one is usable).

Strings are compared as Unicode code points (not bytes, not grapheme clusters): ``"é"`` written
as one code point differs from ``"e"`` + a combining accent. Edge cases:

=======================  ========  ==========================================================
comparator               empty     oracle (equal on every pair, see tests)
=======================  ========  ==========================================================
jaro, jaro_winkler       both 1.0  rapidfuzz ``Jaro`` / ``JaroWinkler.similarity`` (DuckDB
                         one 0.0   also, except that DuckDB scores two empty strings 0.0)
levenshtein              length    rapidfuzz ``Levenshtein.distance``, DuckDB ``levenshtein``
damerau_levenshtein      length    rapidfuzz ``DamerauLevenshtein.distance`` (unrestricted),
                                   DuckDB ``damerau_levenshtein``
jaccard                  NaN       DuckDB ``jaccard`` (character sets); DuckDB raises an error
                                   on an empty string, gpulink returns NaN
=======================  ========  ==========================================================

>>> from gpulink import comparators as gc
>>> gc.jaro_winkler(["martha", "dwayne", None], ["marhta", "duane", "x"], backend="cpu").round(4)
array([0.9611, 0.84  ,    nan])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.backend import resolve_backend
from gpulink.errors import InputError
from gpulink.kernels import comparator_launch as launch

__all__ = ["damerau_levenshtein", "jaccard", "jaro", "jaro_winkler", "levenshtein"]


@dataclass
class CodePoints:
    """Strings as one uint32 buffer of code points: string ``k`` is ``chars[offsets[k]:offsets[k+1]]``.

    ``valid[k]`` is False for a null (None / NaN); its range is empty.
    """

    chars: np.ndarray  # uint32
    offsets: np.ndarray  # int64[n + 1]
    valid: np.ndarray  # bool[n]

    def __len__(self) -> int:
        return len(self.valid)

    @property
    def max_len(self) -> int:
        return int(np.max(np.diff(self.offsets))) if len(self.valid) else 0


def _string_types(t: pa.DataType) -> bool:
    return (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_null(t)
        or getattr(pa.types, "is_string_view", lambda _t: False)(t)
    )


def _first_non_string(values):
    """(position, value) of the first element that is neither a string nor a null."""
    import pandas as pd

    for i, v in enumerate(values):
        if v is None or v is pd.NA or isinstance(v, str):
            continue
        if isinstance(v, float) and v != v:  # NaN
            continue
        return i, v
    return None, None


def _to_arrow(values, arg: str, func: str) -> pa.Array:
    """``values`` as one pyarrow large_string Array, or an InputError naming what is wrong."""
    if isinstance(values, (str, bytes)):
        raise InputError(
            f"{func}: argument {arg!r} is a single string ({values[:40]!r}); pass a sequence "
            f"of strings, e.g. {func}([a], [b]) for one pair"
        )
    if not isinstance(values, (pa.Array, pa.ChunkedArray)) and hasattr(values, "to_arrow"):
        values = values.to_arrow()  # polars Series
    from_arrow = isinstance(values, (pa.Array, pa.ChunkedArray))
    if from_arrow:
        arr = values
    else:
        try:
            # Inferred, not forced, so that bytes or numbers are caught rather than converted.
            arr = pa.array(values, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise _non_string_error(values, arg, func, exc) from exc
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not _string_types(arr.type):
        if not from_arrow:
            raise _non_string_error(values, arg, func, None)
        raise InputError(
            f"{func}: argument {arg!r} is an Arrow array of type {arr.type}, not strings; "
            f"cast it first, e.g. pyarrow.compute.cast({arg}, pyarrow.string())"
        )
    arr = arr.cast(pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    return arr


def _non_string_error(values, arg: str, func: str, exc) -> InputError:
    pos, bad = _first_non_string(values)
    if pos is None:
        return InputError(f"{func}: argument {arg!r} cannot be read as strings ({exc})")
    return InputError(
        f"{func}: argument {arg!r} has a non-string value at position {pos}: {bad!r} "
        f"({type(bad).__name__}); pass strings or None, e.g. convert with "
        f"[None if v is None else str(v) for v in {arg}]"
    )


def encode(values, *, arg: str = "a", func: str = "encode") -> CodePoints:
    """Strings (any supported sequence) as a :class:`CodePoints` buffer, vectorised via Arrow.

    >>> cp = encode(["añ", None, "日本"])
    >>> cp.chars.tolist(), cp.offsets.tolist(), cp.valid.tolist()
    ([97, 241, 26085, 26412], [0, 2, 2, 4], [True, False, True])
    """
    if type(values) is list:
        fast = _encode_str_list(values)
        if fast is not None:
            return fast
    arr = _to_arrow(values, arg, func)
    n = len(arr)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    filled = pc.fill_null(arr, "") if arr.null_count else arr
    lengths = pc.utf8_length(filled).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    bufs = filled.buffers()
    byte_off = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=filled.offset * 8)
    if n == 0 or bufs[2] is None or byte_off[-1] == byte_off[0]:
        return CodePoints(np.zeros(0, np.uint32), offsets, valid)
    utf8 = memoryview(bufs[2])[byte_off[0] : byte_off[-1]]
    # One decode + one encode over the whole buffer, in C: no Python loop per string.
    utf32 = bytes(utf8).decode("utf-8").encode("utf-32-le")
    chars = np.frombuffer(utf32, np.uint32).copy()
    return CodePoints(chars, offsets, valid)


def _encode_str_list(values: list) -> CodePoints | None:
    """A list of ``str`` only (no nulls), straight to UTF-32 without Arrow: about twice as fast.

    Returns None (use the general path) when any element is not a string.
    """
    try:
        joined = "".join(values)
    except TypeError:
        return None
    n = len(values)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter(map(len, values), np.int64, count=n), out=offsets[1:])
    try:
        chars = np.frombuffer(joined.encode("utf-32-le"), np.uint32).copy()
    except UnicodeEncodeError:  # lone surrogates: let the Arrow path report them
        return None
    return CodePoints(chars, offsets, np.ones(n, bool))


def _pairwise(metric: str, a, b, *, backend, score_cutoff=None) -> np.ndarray:
    func = metric
    ea = encode(a, arg="a", func=func)
    eb = encode(b, arg="b", func=func)
    if len(ea) != len(eb):
        raise InputError(
            f"{func}: 'a' has {len(ea)} values but 'b' has {len(eb)}; pass two sequences of "
            f"equal length (pair k compares a[k] with b[k])"
        )
    max_dist = -1
    if score_cutoff is not None:
        if isinstance(score_cutoff, bool) or int(score_cutoff) != score_cutoff or score_cutoff < 0:
            raise InputError(
                f"{func}: score_cutoff must be a non-negative integer or None, got {score_cutoff!r}"
            )
        max_dist = int(score_cutoff)
    valid = (ea.valid & eb.valid).astype(np.uint8)
    max_len = max(ea.max_len, eb.max_len)
    code = launch.METRICS[metric]
    be = resolve_backend(backend)
    if not be.is_gpu:
        return launch.run_cpu(
            code, ea.chars, ea.offsets, eb.chars, eb.offsets, valid, max_dist, max_len
        )
    xp = be.xp
    out = launch.run_gpu(
        code,
        xp.asarray(ea.chars),
        xp.asarray(ea.offsets),
        xp.asarray(eb.chars),
        xp.asarray(eb.offsets),
        xp.asarray(valid),
        max_dist,
        max_len,
        xp=xp,
    )
    return be.to_host(out)


def jaro(a, b, *, backend="auto") -> np.ndarray:
    """Jaro similarity of each pair ``(a[k], b[k])``, in [0, 1]; NaN where either is null.

    Same values as ``rapidfuzz.distance.Jaro.similarity`` (two empty strings: 1.0).

    >>> jaro(["martha", "", "abc"], ["marhta", "", None], backend="cpu").round(4)
    array([0.9444, 1.    ,    nan])
    """
    return _pairwise("jaro", a, b, backend=backend)


def jaro_winkler(a, b, *, backend="auto") -> np.ndarray:
    """Jaro-Winkler similarity (prefix weight 0.1, prefix up to 4, boost when Jaro > 0.7).

    Same values as ``rapidfuzz.distance.JaroWinkler.similarity`` and DuckDB's
    ``jaro_winkler_similarity`` (except two empty strings: 1.0 here and in rapidfuzz, 0.0 in
    DuckDB).

    >>> jaro_winkler(["martha", "jones"], ["marhta", "johnson"], backend="cpu").round(4)
    array([0.9611, 0.8324])
    """
    return _pairwise("jaro_winkler", a, b, backend=backend)


def levenshtein(a, b, *, score_cutoff=None, backend="auto") -> np.ndarray:
    """Levenshtein (edit) distance of each pair, as float64 (NaN where either is null).

    ``score_cutoff``: a distance above it is reported as ``score_cutoff + 1`` (and computed
    faster), as rapidfuzz does.

    >>> levenshtein(["kitten", "flaw", "日本"], ["sitting", "lawn", "日本語"], backend="cpu")
    array([3., 2., 1.])
    >>> levenshtein(["kitten"], ["sitting"], score_cutoff=1, backend="cpu")
    array([2.])
    """
    return _pairwise("levenshtein", a, b, backend=backend, score_cutoff=score_cutoff)


def damerau_levenshtein(a, b, *, score_cutoff=None, backend="auto") -> np.ndarray:
    """Unrestricted Damerau-Levenshtein distance of each pair (adjacent transpositions count 1,
    with edits allowed between transposed characters), as float64; NaN where either is null.

    Same values as ``rapidfuzz.distance.DamerauLevenshtein.distance`` and DuckDB's
    ``damerau_levenshtein``. ``score_cutoff`` as in :func:`levenshtein`.

    >>> damerau_levenshtein(["CA", "smtih"], ["ABC", "smith"], backend="cpu")
    array([2., 1.])
    """
    return _pairwise("damerau_levenshtein", a, b, backend=backend, score_cutoff=score_cutoff)


def jaccard(a, b, *, backend="auto") -> np.ndarray:
    """Jaccard similarity of the character *sets* of each pair (DuckDB's ``jaccard``).

    NaN where either string is null or empty (DuckDB raises an error on empty strings).

    >>> jaccard(["abc", "aab", "x"], ["abd", "ab", ""], backend="cpu")
    array([0.5, 1. , nan])
    """
    return _pairwise("jaccard", a, b, backend=backend)
