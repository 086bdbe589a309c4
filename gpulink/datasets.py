"""Synthetic people with ground truth, for tests, demos and benchmarks.

:func:`synthetic_people` returns an Arrow table of person records in which one real person
(``cluster``) has a heavy-tailed number of records (most people one, a few dozens), and every
record after a person's first carries realistic data-entry errors: typos (substitution,
keyboard neighbour, insertion, deletion, transposition), nicknames and initials, first/surname
swaps, day/month swaps and off-by-one years, partial postcodes, stale addresses and email
variants. Any field of any record may be missing.

Names are drawn from the weighted name lists in Faker's English locale providers (US first names
and surnames with their published frequencies, plus a tail of British, Irish and New Zealand
names); postcode areas are the real UK areas Faker knows and towns are real British towns from
Faker's geographic data.

Reproducible by construction: people are generated in fixed-size blocks of
:data:`BLOCK_PERSONS`, each from its own random stream keyed by ``(seed, block)``. The table for
``n_records`` is the first ``n_records`` records of that endless sequence of blocks, so the
result never depends on the thread count or on how :func:`write_synthetic_people` partitions it.

>>> t = synthetic_people(1000, seed=1)
>>> t.num_rows, t.column_names[:4]
(1000, ['unique_id', 'cluster', 'first_name', 'surname'])
"""

from __future__ import annotations

import argparse
import enum
import functools
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gpulink.errors import InputError
from gpulink.io import atomic_output, check_output_path

__all__ = [
    "BLOCK_PERSONS",
    "ClusterSizes",
    "ErrorFlag",
    "ErrorRates",
    "main_synth",
    "synthetic_people",
    "write_synthetic_people",
]

#: People per generation block. Fixed forever: changing it changes every generated dataset.
BLOCK_PERSONS = 8192

# Random streams within a block, so that adding draws to one never shifts another.
_STREAM_SIZES, _STREAM_PEOPLE, _STREAM_ERRORS, _STREAM_ORDER = 0, 1, 2, 3


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterSizes:
    """How many records each person has.

    A person has one record with probability ``1 - duplicate_rate``; otherwise ``1 + k`` records
    where ``k >= 1`` follows a Zipf law with exponent ``zipf_exponent``, truncated so that no
    person has more than ``max_cluster_size`` records (a heavy tail: many pairs, some big clusters).

    >>> ClusterSizes(duplicate_rate=0.5).pmf()[:2].round(3).tolist()
    [0.5, 0.31]
    """

    duplicate_rate: float = 0.35
    zipf_exponent: float = 2.0
    max_cluster_size: int = 30

    def __post_init__(self) -> None:
        if not 0.0 <= self.duplicate_rate <= 1.0:
            raise InputError(
                f"duplicate_rate={self.duplicate_rate!r} is not a probability; pass 0 <= rate <= 1"
            )
        if self.max_cluster_size < 2 and self.duplicate_rate > 0:
            raise InputError(
                f"max_cluster_size={self.max_cluster_size!r} allows no duplicates; pass >= 2"
            )
        if self.zipf_exponent <= 0:
            raise InputError(f"zipf_exponent={self.zipf_exponent!r} must be > 0")

    def pmf(self) -> np.ndarray:
        """P(size = s) for s = 1 .. max_cluster_size (index 0 is size 1)."""
        extra = np.arange(1, max(self.max_cluster_size, 2), dtype=np.float64)
        zipf = extra ** (-self.zipf_exponent)
        zipf /= zipf.sum()
        pmf = np.empty(max(self.max_cluster_size, 2))
        pmf[0] = 1.0 - self.duplicate_rate
        pmf[1:] = self.duplicate_rate * zipf
        return pmf[: max(self.max_cluster_size, 1)]


@dataclass(frozen=True)
class ErrorRates:
    """Probabilities of each kind of error.

    ``missing`` applies independently to every field of every record; ``no_email`` is the share
    of people who have no email at all. Every other rate is the probability that a duplicate
    record (any record of a person but the first) gets that error, where it applies (a nickname
    needs a name that has one; a day/month swap needs a day of at most 12 that differs from the
    month). A float ``errors=x`` scales all defaults by ``x`` (clipped at 1).

    >>> ErrorRates().scaled(2.0).typo_surname
    0.2
    """

    typo_first_name: float = 0.10
    typo_surname: float = 0.10
    nickname: float = 0.10
    initial: float = 0.03
    name_swap: float = 0.03
    dob_day_month_swap: float = 0.05
    dob_year_off: float = 0.04
    postcode_partial: float = 0.04
    postcode_typo: float = 0.03
    stale_address: float = 0.10
    city_typo: float = 0.03
    email_variant: float = 0.10
    missing: float = 0.03
    no_email: float = 0.15

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise InputError(
                    f"error rate {f.name}={value!r} is not a probability; pass 0 <= rate <= 1"
                )

    def scaled(self, factor: float) -> ErrorRates:
        """All rates multiplied by ``factor`` (clipped at 1)."""
        if factor < 0:
            raise InputError(f"errors={factor!r}: a scale factor must be >= 0")
        return ErrorRates(**{k: min(1.0, v * factor) for k, v in asdict(self).items()})


class ErrorFlag(enum.IntFlag):
    """Bits of the optional ``error_flags`` column: which errors a record received."""

    TYPO_FIRST_NAME = 1 << 0
    TYPO_SURNAME = 1 << 1
    NICKNAME = 1 << 2
    INITIAL = 1 << 3
    NAME_SWAP = 1 << 4
    DOB_DAY_MONTH_SWAP = 1 << 5
    DOB_YEAR_OFF = 1 << 6
    POSTCODE_PARTIAL = 1 << 7
    POSTCODE_TYPO = 1 << 8
    STALE_ADDRESS = 1 << 9
    CITY_TYPO = 1 << 10
    EMAIL_VARIANT = 1 << 11
    MISSING_FIRST_NAME = 1 << 12
    MISSING_SURNAME = 1 << 13
    MISSING_DOB = 1 << 14
    MISSING_POSTCODE = 1 << 15
    MISSING_CITY = 1 << 16
    MISSING_EMAIL = 1 << 17


def _cluster_sizes(duplicates: ClusterSizes | float | Mapping) -> ClusterSizes:
    if isinstance(duplicates, ClusterSizes):
        return duplicates
    if isinstance(duplicates, Mapping):
        return ClusterSizes(**duplicates)
    if isinstance(duplicates, (int, float)):
        return ClusterSizes(duplicate_rate=float(duplicates))
    raise InputError(
        f"duplicates={duplicates!r}: pass a ClusterSizes, a dict of its fields, or a float "
        "(the share of people with more than one record)"
    )


def _error_rates(errors: ErrorRates | float | Mapping) -> ErrorRates:
    if isinstance(errors, ErrorRates):
        return errors
    if isinstance(errors, Mapping):
        unknown = set(errors) - {f.name for f in fields(ErrorRates)}
        if unknown:
            raise InputError(
                f"errors has unknown keys {sorted(unknown)}; known: "
                f"{[f.name for f in fields(ErrorRates)]}"
            )
        return replace(ErrorRates(), **errors)
    if isinstance(errors, (int, float)):
        return ErrorRates().scaled(float(errors))
    raise InputError(
        f"errors={errors!r}: pass an ErrorRates, a dict of rates, or a float scale factor"
    )


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed={seed!r}: pass a non-negative integer")
    return int(seed)


def _rng(seed: int, block: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, block, stream]))


# --------------------------------------------------------------------------------------------
# Reference data, read from Faker's providers on first use
# --------------------------------------------------------------------------------------------

# Common English diminutives (formal name -> nicknames); only names in the first-name list are used.
_NICKNAMES = {
    "Alexander": "Alex Xander Sandy",
    "Alexandra": "Alex Sandra Lexi",
    "Andrew": "Andy Drew",
    "Anthony": "Tony",
    "Benjamin": "Ben Benny",
    "Catherine": "Cathy Kate",
    "Charles": "Charlie Chuck",
    "Christina": "Chris Tina",
    "Christine": "Chris",
    "Christopher": "Chris Kit",
    "Daniel": "Dan Danny",
    "David": "Dave Davy",
    "Deborah": "Debbie Deb",
    "Donald": "Don Donny",
    "Edward": "Ed Eddie Ted",
    "Elizabeth": "Liz Beth Lizzie Betty",
    "Emily": "Em Emmy",
    "Frances": "Fran",
    "Gabriel": "Gabe",
    "Gregory": "Greg",
    "James": "Jim Jimmy Jamie",
    "Jennifer": "Jen Jenny",
    "Jessica": "Jess Jessie",
    "Jonathan": "Jon Jonny",
    "Joseph": "Joe Joey",
    "Joshua": "Josh",
    "Katherine": "Kate Kathy Katie",
    "Kathleen": "Kathy Kath",
    "Kenneth": "Ken Kenny",
    "Kimberly": "Kim",
    "Lawrence": "Larry",
    "Margaret": "Maggie Peggy Meg",
    "Matthew": "Matt",
    "Michael": "Mike Mick Mickey",
    "Nicholas": "Nick Nicky",
    "Patricia": "Pat Patty Trish",
    "Patrick": "Pat Paddy",
    "Peter": "Pete",
    "Rebecca": "Becky Becca",
    "Richard": "Rick Dick Rich",
    "Robert": "Bob Rob Bobby",
    "Ronald": "Ron Ronnie",
    "Samantha": "Sam",
    "Samuel": "Sam Sammy",
    "Stephanie": "Steph",
    "Stephen": "Steve",
    "Steven": "Steve",
    "Susan": "Sue Suzy",
    "Thomas": "Tom Tommy",
    "Timothy": "Tim Timmy",
    "Victoria": "Vicky Tori",
    "William": "Will Bill Billy Liam",
    "Zachary": "Zach",
    "Abigail": "Abby",
    "Alexis": "Lexi",
    "Amanda": "Mandy",
    "Angela": "Angie",
    "Barbara": "Barb Babs",
    "Cynthia": "Cindy",
    "Dorothy": "Dot Dottie",
    "Eleanor": "Ellie Nell",
    "Jacqueline": "Jackie",
    "Jeffrey": "Jeff",
    "Joanne": "Jo",
    "Judith": "Judy",
    "Kristen": "Kris",
    "Leonard": "Len Lenny",
    "Madison": "Maddie",
    "Melissa": "Mel Missy",
    "Natalie": "Nat",
    "Nathan": "Nate",
    "Nathaniel": "Nate Nat",
    "Pamela": "Pam",
    "Philip": "Phil",
    "Raymond": "Ray",
    "Russell": "Russ",
    "Sandra": "Sandy",
    "Theresa": "Tess Terri",
    "Vincent": "Vince",
    "Walter": "Walt Wally",
    "Zoe": "Zo",
    "Christian": "Chris",
    "Gerald": "Gerry Jerry",
    "Harold": "Harry Hal",
    "Henry": "Harry Hank",
    "Jacob": "Jake",
    "Jason": "Jay",
    "Jeremy": "Jerry",
    "John": "Jack Johnny",
    "Lauren": "Laurie",
    "Louis": "Lou",
    "Mary": "Molly Polly",
    "Maria": "Mia",
    "Michelle": "Shelly",
    "Nancy": "Nan",
    "Rachel": "Rach",
    "Sarah": "Sally Sadie",
    "Tiffany": "Tiff",
    "Virginia": "Ginny",
}

# QWERTY neighbours of each key, used for keyboard-slip substitutions.
_KEYBOARD = {
    "q": "wa",
    "w": "qeas",
    "e": "wrsd",
    "r": "etdf",
    "t": "ryfg",
    "y": "tugh",
    "u": "yihj",
    "i": "uojk",
    "o": "ipkl",
    "p": "ol",
    "a": "qwsz",
    "s": "awedxz",
    "d": "serfcx",
    "f": "drtgvc",
    "g": "ftyhbv",
    "h": "gyujnb",
    "j": "huikmn",
    "k": "jiolm",
    "l": "kop",
    "z": "asx",
    "x": "zsdc",
    "c": "xdfv",
    "v": "cfgb",
    "b": "vghn",
    "n": "bhjm",
    "m": "njk",
    "1": "2q",
    "2": "13qw",
    "3": "24we",
    "4": "35er",
    "5": "46rt",
    "6": "57ty",
    "7": "68yu",
    "8": "79ui",
    "9": "80io",
    "0": "9op",
}


@dataclass(frozen=True)
class _Reference:
    first_names: pa.Array  # male names, then female names
    first_cdf_male: np.ndarray
    first_cdf_female: np.ndarray
    surnames: pa.Array
    surname_cdf: np.ndarray
    nick_start: np.ndarray  # per first name: first index into nicknames, count
    nick_count: np.ndarray
    nicknames: pa.Array
    areas: pa.Array  # UK postcode areas
    towns: pa.Array
    town_of_district: np.ndarray  # (n_areas, n_districts) -> town index
    unit_letters: np.ndarray  # uint8 codes of the letters valid in an inward code
    domains: pa.Array
    domain_cdf: np.ndarray
    neighbours: np.ndarray  # (128, 6) uint8 keyboard neighbours, padded by repetition
    neighbour_count: np.ndarray


def _weighted(names_weights: Mapping[str, float], tail: list[str], tail_share: float):
    """Head names keep their published weights; the tail shares ``tail_share`` uniformly."""
    head = [n for n in names_weights if n.isascii() and n.isalpha()]
    head_w = np.array([names_weights[n] for n in head], dtype=np.float64)
    seen = set(head)
    tail = sorted({n for n in tail if n.isascii() and n.isalpha() and n not in seen})
    weights = np.concatenate(
        [
            head_w / head_w.sum() * (1 - tail_share),
            np.full(len(tail), tail_share / max(len(tail), 1)),
        ]
    )
    return head + tail, weights


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


@functools.lru_cache(maxsize=1)
def _reference() -> _Reference:
    from faker.providers.address.en_GB import Provider as GBAddress
    from faker.providers.geo import Provider as Geo
    from faker.providers.internet.en_GB import Provider as GBInternet
    from faker.providers.person.en_GB import Provider as GBPerson
    from faker.providers.person.en_IE import Provider as IEPerson
    from faker.providers.person.en_NZ import Provider as NZPerson
    from faker.providers.person.en_US import Provider as USPerson

    def names(provider, attr):
        value = getattr(provider, attr, ())
        return list(value.keys() if isinstance(value, Mapping) else value)

    tails = (GBPerson, IEPerson, NZPerson)
    male, male_w = _weighted(
        USPerson.first_names_male, sum((names(p, "first_names_male") for p in tails), []), 0.1
    )
    female, female_w = _weighted(
        USPerson.first_names_female, sum((names(p, "first_names_female") for p in tails), []), 0.1
    )
    surnames, surname_w = _weighted(
        USPerson.last_names, sum((names(p, "last_names") for p in tails), []), 0.1
    )
    # Names used by both sexes appear twice in the dictionary; harmless (same string).
    first = male + female
    cdf_male = _cdf(np.concatenate([male_w, np.zeros(len(female))]))
    cdf_female = _cdf(np.concatenate([np.zeros(len(male)), female_w]))

    nick_list: list[str] = []
    nick_start = np.zeros(len(first), dtype=np.int32)
    nick_count = np.zeros(len(first), dtype=np.int32)
    for i, name in enumerate(first):
        nicks = _NICKNAMES.get(name, "").split()
        nick_start[i], nick_count[i] = len(nick_list), len(nicks)
        nick_list.extend(nicks)

    areas = list(GBAddress.POSTAL_ZONES)
    towns = sorted({c[2] for c in Geo.land_coords if c[3] == "GB" and c[2].isascii()})
    # A fixed (seed-independent) map from postcode district to town: geography is not random.
    town_rng = np.random.default_rng(20240601)
    town_of_district = town_rng.integers(0, len(towns), size=(len(areas), 21)).astype(np.int32)
    unit_letters = np.frombuffer(GBAddress._postcode_sets["E"].encode(), dtype=np.uint8).copy()

    domains = list(GBInternet.free_email_domains)
    domain_w = 1.0 / np.arange(1, len(domains) + 1)  # gmail first, a Zipf share for the rest

    neighbours = np.zeros((128, 6), dtype=np.uint8)
    counts = np.zeros(128, dtype=np.int32)
    for key, near in _KEYBOARD.items():
        codes = np.frombuffer(near.encode(), dtype=np.uint8)
        neighbours[ord(key)] = np.resize(codes, 6)
        counts[ord(key)] = len(codes)
    return _Reference(
        first_names=pa.array(first, pa.string()),
        first_cdf_male=cdf_male,
        first_cdf_female=cdf_female,
        surnames=pa.array(surnames, pa.string()),
        surname_cdf=_cdf(surname_w),
        nick_start=nick_start,
        nick_count=nick_count,
        nicknames=pa.array(nick_list, pa.string()),
        areas=pa.array(areas, pa.string()),
        towns=pa.array(towns, pa.string()),
        town_of_district=town_of_district,
        unit_letters=unit_letters,
        domains=pa.array(domains, pa.string()),
        domain_cdf=_cdf(domain_w),
        neighbours=neighbours,
        neighbour_count=counts,
    )


# --------------------------------------------------------------------------------------------
# Vectorised string edits on Arrow string arrays (ASCII)
# --------------------------------------------------------------------------------------------


def _to_matrix(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Pad ASCII strings into a (n, max_len + 2) uint8 matrix (zeros after the end)."""
    arr = pc.fill_null(arr, "")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data = (
        np.frombuffer(arr.buffers()[2], dtype=np.uint8)
        if arr.buffers()[2]
        else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets)
    width = int(lengths.max(initial=0)) + 2
    matrix = np.zeros((n, width), dtype=np.uint8)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(rows.size) - np.repeat(offsets[:-1] - offsets[0], lengths)
    matrix[rows, cols] = data[offsets[0] : offsets[-1]]
    return matrix, lengths


def _from_matrix(matrix: np.ndarray, lengths: np.ndarray) -> pa.Array:
    keep = np.arange(matrix.shape[1])[None, :] < lengths[:, None]
    data = matrix[keep]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(data))


_SUBSTITUTE, _KEYSLIP, _INSERT, _DELETE, _TRANSPOSE = range(5)


def _typos(arr: pa.Array, rng: np.random.Generator) -> pa.Array:
    """One random typo per string: substitution, keyboard slip, insertion, deletion or
    transposition of neighbours, at a uniform position, keeping the case of the text around it.
    Empty strings get an inserted letter.
    """
    ref = _reference()
    matrix, lengths = _to_matrix(arr)
    n, width = matrix.shape
    if n == 0:
        return pa.array([], pa.string())
    kind = rng.integers(0, 5, size=n)
    u_pos, u_char, u_near = rng.random(n), rng.random(n), rng.random(n)
    # Deleting a one-letter string or transposing fewer than two letters is not a typo: insert.
    kind[(lengths < 1) | ((kind == _DELETE) & (lengths < 2))] = _INSERT
    kind[(kind == _TRANSPOSE) & (lengths < 2)] = _SUBSTITUTE
    kind[(kind != _INSERT) & (lengths < 1)] = _INSERT
    span = np.where(
        kind == _INSERT, lengths + 1, np.where(kind == _TRANSPOSE, lengths - 1, lengths)
    )
    pos = np.minimum((u_pos * span).astype(np.int64), np.maximum(span - 1, 0))

    rows = np.arange(n)
    # Swapping two equal letters changes nothing: substitute instead.
    same_pair = (kind == _TRANSPOSE) & (
        matrix[rows, np.minimum(pos, width - 1)] == matrix[rows, np.minimum(pos + 1, width - 1)]
    )
    kind[same_pair] = _SUBSTITUTE
    old = matrix[rows, np.minimum(pos, width - 1)]
    # The character next to an insertion decides its class and case.
    context = np.where(kind == _INSERT, matrix[rows, np.maximum(pos - 1, 0)], old)
    context = np.where((kind == _INSERT) & (pos == 0), matrix[:, 0], context)
    lower = context | 0x20
    is_letter = (lower >= ord("a")) & (lower <= ord("z"))
    is_digit = (context >= ord("0")) & (context <= ord("9"))
    is_upper = is_letter & (context < ord("a"))
    # A random letter (digit) other than the one replaced: draw from the 25 (9) others.
    old_lower = np.where(kind == _INSERT, 0, old | 0x20).astype(np.int64)
    letter = (u_char * 25).astype(np.int64)
    letter += (kind != _INSERT) & (letter >= old_lower - ord("a"))
    digit = (u_char * 9).astype(np.int64)
    digit += (kind != _INSERT) & (digit >= old.astype(np.int64) - ord("0"))
    new = np.where(is_digit, ord("0") + digit, ord("a") + letter).astype(np.uint8)
    base = np.where(is_letter, lower, context).astype(np.int64) & 0x7F
    near_n = ref.neighbour_count[base]
    near = ref.neighbours[base, np.minimum((u_near * np.maximum(near_n, 1)).astype(np.int64), 5)]
    new = np.where((kind == _KEYSLIP) & (near_n > 0), near, new).astype(np.uint8)
    new = np.where(is_upper, new & 0xDF, new).astype(np.uint8)
    new = np.where(is_letter | is_digit, new, ord("a") + (u_char * 26).astype(np.uint8))

    j = np.arange(width)[None, :]
    p = pos[:, None]
    k = kind[:, None]
    src = np.where(
        k == _INSERT,
        j - (j > p),
        np.where(
            k == _DELETE, j + (j >= p), np.where(k == _TRANSPOSE, j + (j == p) - (j == p + 1), j)
        ),
    )
    out = np.take_along_axis(matrix, np.clip(src, 0, width - 1), axis=1)
    write = (kind == _INSERT) | (kind == _SUBSTITUTE) | (kind == _KEYSLIP)
    out[rows[write], pos[write]] = new[write]
    new_len = lengths + (kind == _INSERT) - (kind == _DELETE)
    out[np.arange(width)[None, :] >= new_len[:, None]] = 0
    # Capitalised words stay capitalised when the edit touches the first letter.
    first = matrix[:, 0]
    capital = (first >= ord("A")) & (first <= ord("Z")) & (matrix[:, 1] >= ord("a"))
    fix = capital & (pos <= 1) & (new_len > 0)
    out[fix, 0] = np.where(
        (out[fix, 0] >= ord("a")) & (out[fix, 0] <= ord("z")), out[fix, 0] & 0xDF, out[fix, 0]
    )
    fix1 = fix & (new_len > 1)
    out[fix1, 1] = np.where(
        (out[fix1, 1] >= ord("A")) & (out[fix1, 1] <= ord("Z")), out[fix1, 1] | 0x20, out[fix1, 1]
    )
    return _from_matrix(out, new_len)


def _replace(arr: pa.Array, mask: np.ndarray, values: pa.Array) -> pa.Array:
    """``arr`` with the rows where ``mask`` holds replaced by ``values`` (len == mask.sum())."""
    if not mask.any():
        return arr
    return pc.replace_with_mask(arr, pa.array(mask), values)


def _edit(arr: pa.Array, mask: np.ndarray, fn) -> pa.Array:
    if not mask.any():
        return arr
    return _replace(arr, mask, fn(arr.filter(pa.array(mask))))


# --------------------------------------------------------------------------------------------
# One block of people
# --------------------------------------------------------------------------------------------


def _block_cluster_sizes(seed: int, block: int, sizes: ClusterSizes) -> np.ndarray:
    """Records per person for the BLOCK_PERSONS people of ``block``."""
    rng = _rng(seed, block, _STREAM_SIZES)
    cdf = _cdf(sizes.pmf())
    return (np.searchsorted(cdf, rng.random(BLOCK_PERSONS), side="right") + 1).astype(np.int32)


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1).astype(np.int32)


def _dates(years: np.ndarray, months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of (year, month 1-12, day), the day clamped to the month's end."""
    month_start = ((years - 1970) * 12 + (months - 1)).astype("datetime64[M]")
    month_len = (
        (month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")
    ).astype(np.int64)
    return month_start.astype("datetime64[D]").astype(np.int64) + np.minimum(days, month_len) - 1


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    return (
        y.astype(np.int64) + 1970,
        (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
        (d - m.astype("datetime64[D]")).astype(np.int64) + 1,
    )


def _people(seed: int, block: int) -> dict[str, np.ndarray]:
    """The true attributes of the BLOCK_PERSONS people of ``block`` (two addresses each)."""
    ref = _reference()
    rng = _rng(seed, block, _STREAM_PEOPLE)
    n = BLOCK_PERSONS
    female = rng.random(n) < 0.5
    u = rng.random(n)
    first = np.where(female, _draw(ref.first_cdf_female, u), _draw(ref.first_cdf_male, u))
    surname = _draw(ref.surname_cdf, rng.random(n))
    lo, hi = (
        np.datetime64("1930-01-01").astype(np.int64),
        np.datetime64("2008-12-31").astype(np.int64),
    )
    dob = rng.integers(lo, hi + 1, size=n)
    # Two addresses per person: [current, previous]. District numbers favour small values.
    area = rng.integers(0, len(ref.areas), size=2 * n)
    district = np.minimum((rng.pareto(1.2, size=2 * n) * 3).astype(np.int64) + 1, 20)
    sector = rng.integers(0, 10, size=2 * n)
    letters = ref.unit_letters[rng.integers(0, len(ref.unit_letters), size=(2 * n, 2))]
    town = ref.town_of_district[area, district]
    return {
        "female": female,
        "first": first,
        "surname": surname,
        "dob": dob,
        "area": area,
        "district": district,
        "sector": sector,
        "letters": letters,
        "town": town,
        "email_style": rng.integers(0, 4, size=n),
        "email_sep": rng.integers(0, 3, size=n),
        "email_digits": rng.integers(0, 100, size=n),
        "email_digit_kind": rng.integers(0, 3, size=n),  # none, two digits, birth year
        "email_domain": _draw(ref.domain_cdf, rng.random(n)),
        "no_email": rng.random(n),
    }


def _strings_from_ints(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype(np.int64)).cast(pa.string())


def _postcodes(people: dict, address: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Full postcodes ("SW12 3AB") and their outward codes ("SW12") for the given addresses."""
    ref = _reference()
    outward = pc.binary_join_element_wise(
        ref.areas.take(pa.array(people["area"][address])),
        _strings_from_ints(people["district"][address]),
        "",
    )
    letters = people["letters"][address]
    # The inward code: the sector digit and two unit letters.
    inward_codes = np.column_stack(
        [(ord("0") + people["sector"][address]).astype(np.uint8), letters[:, 0], letters[:, 1]]
    )
    inward = _from_matrix(inward_codes, np.full(len(address), 3, dtype=np.int32))
    full = pc.binary_join_element_wise(outward, inward, " ")
    return full, outward


def _emails(parts: dict, first: pa.Array, surname: pa.Array) -> pa.Array:
    """Compose emails from lower-cased name parts, separator, digits and domain."""
    ref = _reference()
    fl = pc.utf8_lower(first)
    sl = pc.utf8_lower(surname)
    style = parts["style"]
    initial = pc.utf8_slice_codeunits(fl, 0, 1)
    a = pc.if_else(pa.array(style == 2), initial, fl)
    a = pc.if_else(pa.array(style == 3), sl, a)
    b = pc.if_else(pa.array(style == 3), fl, sl)
    seps = pa.array(["", ".", "_"]).take(pa.array(parts["sep"]))
    digit_kind = parts["digit_kind"]
    digits = np.where(digit_kind == 1, parts["digits"], parts["year"])
    digits_str = pc.if_else(pa.array(digit_kind == 0), "", _strings_from_ints(digits))
    domain = ref.domains.take(pa.array(parts["domain"]))
    return pc.binary_join_element_wise(a, seps, b, digits_str, "@", domain, "")


def _generate_block(
    seed: int, block: int, sizes: ClusterSizes, rates: ErrorRates, with_flags: bool
) -> pa.Table:
    """All records of the people of ``block``, person by person (not yet shuffled)."""
    ref = _reference()
    people = _people(seed, block)
    counts = _block_cluster_sizes(seed, block, sizes)
    person = np.repeat(np.arange(BLOCK_PERSONS), counts)
    n = person.size
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    dup = (np.arange(n) - np.repeat(starts, counts)) > 0
    rng = _rng(seed, block, _STREAM_ERRORS)
    flags = np.zeros(n, dtype=np.uint32)

    def hit(rate: float, eligible: np.ndarray | None = None) -> np.ndarray:
        mask = dup & (rng.random(n) < rate)
        return mask if eligible is None else mask & eligible

    def flag(mask: np.ndarray, bit: ErrorFlag) -> np.ndarray:
        flags[mask] |= np.uint32(bit)
        return mask

    # Names: nickname or initial, then typos, then a first/surname swap.
    first_code = people["first"][person]
    first = ref.first_names.take(pa.array(first_code))
    surname = ref.surnames.take(pa.array(people["surname"][person]))
    nick = flag(hit(rates.nickname, ref.nick_count[first_code] > 0), ErrorFlag.NICKNAME)
    if nick.any():
        choice = ref.nick_start[first_code[nick]] + (
            rng.random(int(nick.sum())) * ref.nick_count[first_code[nick]]
        ).astype(np.int32)
        first = _replace(first, nick, ref.nicknames.take(pa.array(choice)))
    initial = flag(hit(rates.initial, ~nick), ErrorFlag.INITIAL)
    first = _edit(first, initial, lambda a: pc.utf8_slice_codeunits(a, 0, 1))
    first = _edit(
        first,
        flag(hit(rates.typo_first_name, ~initial), ErrorFlag.TYPO_FIRST_NAME),
        lambda a: _typos(a, rng),
    )
    surname = _edit(
        surname, flag(hit(rates.typo_surname), ErrorFlag.TYPO_SURNAME), lambda a: _typos(a, rng)
    )
    # Emails come from the true names, before any swap, typo or nickname in this record.
    true_first = ref.first_names.take(pa.array(first_code))
    true_surname = ref.surnames.take(pa.array(people["surname"][person]))
    swap = pa.array(flag(hit(rates.name_swap), ErrorFlag.NAME_SWAP))
    first, surname = pc.if_else(swap, surname, first), pc.if_else(swap, first, surname)

    # Dates of birth: day/month swap (when it changes the date), off-by-one year.
    dob = people["dob"][person].astype(np.int64)
    y, m, d = _ymd(dob)
    swap_dm = flag(
        hit(rates.dob_day_month_swap, (d <= 12) & (d != m)), ErrorFlag.DOB_DAY_MONTH_SWAP
    )
    dob = np.where(swap_dm, _dates(y, d, m), dob)
    year_off = flag(hit(rates.dob_year_off), ErrorFlag.DOB_YEAR_OFF)
    y2, m2, d2 = _ymd(dob)
    step = np.where(rng.random(n) < 0.5, -1, 1)
    dob = np.where(year_off, _dates(y2 + step, m2, d2), dob)
    dob_str = pa.array(dob.astype(np.int32), pa.date32()).cast(pa.string())

    # Addresses: a stale (previous) address, a partial or mistyped postcode, a mistyped town.
    stale = flag(hit(rates.stale_address), ErrorFlag.STALE_ADDRESS)
    address = 2 * person + stale
    postcode, outward = _postcodes(people, address)
    partial = flag(hit(rates.postcode_partial), ErrorFlag.POSTCODE_PARTIAL)
    postcode = pc.if_else(pa.array(partial), outward, postcode)
    postcode = _edit(
        postcode,
        flag(hit(rates.postcode_typo, ~partial), ErrorFlag.POSTCODE_TYPO),
        lambda a: _typos(a, rng),
    )
    city = ref.towns.take(pa.array(people["town"][address]))
    city = _edit(city, flag(hit(rates.city_typo), ErrorFlag.CITY_TYPO), lambda a: _typos(a, rng))

    # Emails: a variant changes one part (domain, separator, digits) or mistypes the local part.
    parts = {
        "style": people["email_style"][person],
        "sep": people["email_sep"][person],
        "digits": people["email_digits"][person],
        "digit_kind": people["email_digit_kind"][person],
        "year": _ymd(people["dob"][person])[0],
        "domain": people["email_domain"][person],
    }
    variant = flag(hit(rates.email_variant), ErrorFlag.EMAIL_VARIANT)
    which = rng.integers(0, 4, size=n)
    shift = rng.integers(1, 3, size=n)
    parts["domain"] = np.where(
        variant & (which == 0), (parts["domain"] + shift) % len(ref.domains), parts["domain"]
    )
    parts["sep"] = np.where(variant & (which == 1), (parts["sep"] + shift) % 3, parts["sep"])
    parts["digit_kind"] = np.where(
        variant & (which == 2), (parts["digit_kind"] + shift) % 3, parts["digit_kind"]
    )
    email = _emails(parts, true_first, true_surname)
    email = _edit(email, variant & (which == 3), lambda a: _typos(a, rng))
    no_email = people["no_email"][person] < rates.no_email

    # Missing values, in any record, the first included.
    def blank(arr, bit: ErrorFlag, extra: np.ndarray | None = None):
        mask = rng.random(n) < rates.missing
        flag(mask, bit)
        if extra is not None:
            mask = mask | extra
        return pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), arr) if mask.any() else arr

    columns = {
        "unique_id": pa.array(np.zeros(n, dtype=np.int64)),
        "cluster": pa.array(block * BLOCK_PERSONS + person.astype(np.int64)),
        "first_name": blank(first, ErrorFlag.MISSING_FIRST_NAME),
        "surname": blank(surname, ErrorFlag.MISSING_SURNAME),
        "dob": blank(dob_str, ErrorFlag.MISSING_DOB),
        "postcode": blank(postcode, ErrorFlag.MISSING_POSTCODE),
        "city": blank(city, ErrorFlag.MISSING_CITY),
        "email": blank(email, ErrorFlag.MISSING_EMAIL, no_email),
        "gender": pc.if_else(pa.array(people["female"][person]), "female", "male"),
    }
    if with_flags:
        columns["error_flags"] = pa.array(flags)
    return pa.table(columns)


def _finish_block(table: pa.Table, seed: int, block: int, keep: int, first_uid: int) -> pa.Table:
    """Keep the first ``keep`` records (whole people first), shuffle them, number them."""
    table = table.slice(0, keep)
    order = _rng(seed, block, _STREAM_ORDER).permutation(keep)
    table = table.take(pa.array(order))
    uid = pa.array(np.arange(first_uid, first_uid + keep, dtype=np.int64))
    return table.set_column(0, "unique_id", uid)


def _plan(n_records: int, seed: int, sizes: ClusterSizes) -> list[tuple[int, int, int]]:
    """(block, records kept, first unique_id) for every block the first n_records need."""
    plan, total, block = [], 0, 0
    while total < n_records:
        count = int(_block_cluster_sizes(seed, block, sizes).sum())
        keep = min(count, n_records - total)
        plan.append((block, keep, total))
        total += keep
        block += 1
    return plan


def _make_blocks(plan, seed, sizes, rates, with_flags) -> list[pa.Table]:
    return [
        _finish_block(_generate_block(seed, b, sizes, rates, with_flags), seed, b, keep, first)
        for b, keep, first in plan
    ]


def _check_n(n_records) -> int:
    if isinstance(n_records, bool) or not isinstance(n_records, (int, np.integer)) or n_records < 0:
        raise InputError(f"n_records={n_records!r}: pass a non-negative integer")
    return int(n_records)


def _schema(with_flags: bool) -> pa.Schema:
    fields_ = [
        pa.field("unique_id", pa.int64()),
        pa.field("cluster", pa.int64()),
        *(
            pa.field(c, pa.string())
            for c in ("first_name", "surname", "dob", "postcode", "city", "email", "gender")
        ),
    ]
    if with_flags:
        fields_.append(pa.field("error_flags", pa.uint32()))
    return pa.schema(fields_)


def synthetic_people(
    n_records: int,
    *,
    seed: int = 0,
    duplicates: ClusterSizes | float | Mapping = ClusterSizes(),
    errors: ErrorRates | float | Mapping = ErrorRates(),
    error_flags: bool = False,
    threads: int | None = None,
) -> pa.Table:
    """Generate ``n_records`` synthetic person records with the true person of each.

    Columns: ``unique_id`` (int64, 0..n-1), ``cluster`` (int64, the true person), ``first_name``,
    ``surname``, ``dob`` (ISO date string), ``postcode`` (UK), ``city``, ``email``, ``gender``
    (strings, null when missing) and, with ``error_flags=True``, ``error_flags`` (uint32, bits of
    :class:`ErrorFlag`). ``duplicates`` sets the cluster sizes (:class:`ClusterSizes`, or a float:
    the share of people with more than one record); ``errors`` the error rates
    (:class:`ErrorRates`, a dict of rates, or a float scaling the defaults). The result depends
    only on the arguments, never on ``threads`` (default: all cores).

    >>> t = synthetic_people(500, seed=7, duplicates=0.5, errors={"typo_surname": 0.3})
    >>> t.num_rows, t.schema.field("dob").type
    (500, DataType(string))
    >>> t.equals(synthetic_people(500, seed=7, duplicates=0.5, errors={"typo_surname": 0.3}))
    True
    """
    n_records, seed = _check_n(n_records), _check_seed(seed)
    sizes, rates = _cluster_sizes(duplicates), _error_rates(errors)
    plan = _plan(n_records, seed, sizes)
    if not plan:
        return _schema(error_flags).empty_table()
    threads = threads or os.cpu_count() or 1
    if threads > 1 and len(plan) > 1:
        from concurrent.futures import ThreadPoolExecutor

        # Blocks are independent, so threads change the speed, never the result.
        with ThreadPoolExecutor(threads) as pool:
            chunks = list(
                pool.map(lambda p: _make_blocks([p], seed, sizes, rates, error_flags)[0], plan)
            )
    else:
        chunks = _make_blocks(plan, seed, sizes, rates, error_flags)
    return pa.concat_tables(chunks)


def write_synthetic_people(
    path: str | os.PathLike,
    n_records: int,
    *,
    partitions: int,
    seed: int = 0,
    duplicates: ClusterSizes | float | Mapping = ClusterSizes(),
    errors: ErrorRates | float | Mapping = ErrorRates(),
    error_flags: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Stream ``n_records`` synthetic people to a parquet dataset of ``partitions`` files.

    Each file ``part-00000.parquet`` ... holds whole blocks of people, generated independently of
    the other files, so memory stays at one partition and the concatenated dataset equals
    ``synthetic_people(n_records, seed=seed, ...)`` whatever ``partitions`` is. The dataset is
    written under a temporary name and renamed when complete.

    >>> import tempfile, pyarrow.parquet as pq
    >>> d = write_synthetic_people(tempfile.mkdtemp() + "/people", 2000, partitions=3, seed=1,
    ...                            progress=False)
    >>> pq.read_table(d).num_rows
    2000
    """
    n_records, seed = _check_n(n_records), _check_seed(seed)
    if (
        isinstance(partitions, bool)
        or not isinstance(partitions, (int, np.integer))
        or partitions < 1
    ):
        raise InputError(f"partitions={partitions!r}: pass a positive integer")
    sizes, rates = _cluster_sizes(duplicates), _error_rates(errors)
    path = check_output_path(path, what="synthetic people folder", directory=True)
    if path.exists() and not overwrite:
        raise InputError(f"{str(path)!r} already exists; remove it or pass overwrite=True")
    plan = _plan(n_records, seed, sizes)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    bounds = [len(plan) * p // partitions for p in range(partitions + 1)]
    schema = _schema(error_flags)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_records, unit="rec", unit_scale=True, desc="synthetic people")
    try:
        for p in range(partitions):
            part = plan[bounds[p] : bounds[p + 1]]
            with pq.ParquetWriter(tmp / f"part-{p:05d}.parquet", schema) as writer:
                for step in part:
                    table = _make_blocks([step], seed, sizes, rates, error_flags)[0]
                    writer.write_table(table)
                    if bar is not None:
                        bar.update(table.num_rows)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return path


# --------------------------------------------------------------------------------------------
# Command line: gpulink synth
# --------------------------------------------------------------------------------------------

_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9}


def parse_count(text: str) -> int:
    """Parse a record count such as ``"50M"``, ``"100k"``, ``"2.5m"`` or ``"1_000"``.

    >>> parse_count("50M"), parse_count("100k"), parse_count("1_000")
    (50000000, 100000, 1000)
    """
    match = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kKmMbBgG]?)\s*", str(text))
    if not match:
        raise InputError(f"{text!r} is not a count; write e.g. 100000, 100k, 5M or 1.5B")
    return int(round(float(match.group(1).replace("_", "")) * _SUFFIX[match.group(2).lower()]))


def main_synth(argv: list[str] | None = None) -> int:
    """``gpulink synth``: write synthetic people with ground truth to parquet.

    >>> import tempfile
    >>> main_synth(["--rows", "1k", "--out", tempfile.mkdtemp() + "/p", "--quiet"])
    0
    """
    parser = argparse.ArgumentParser(
        prog="gpulink synth",
        description="Write synthetic people (with the true person id) to parquet.",
    )
    parser.add_argument("--rows", required=True, type=parse_count, help="records, e.g. 10M")
    parser.add_argument("--out", required=True, help="output dataset directory (or .parquet file)")
    parser.add_argument(
        "--partitions", type=int, default=None, help="files (default: ~1M rows each)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duplicate-rate", type=float, default=ClusterSizes.duplicate_rate)
    parser.add_argument("--max-cluster-size", type=int, default=ClusterSizes.max_cluster_size)
    parser.add_argument("--error-scale", type=float, default=1.0, help="multiply all error rates")
    parser.add_argument("--error-flags", action="store_true", help="add the error_flags column")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    sizes = ClusterSizes(duplicate_rate=args.duplicate_rate, max_cluster_size=args.max_cluster_size)
    errors = ErrorRates().scaled(args.error_scale)
    start = time.perf_counter()
    single_file = args.out.endswith(".parquet")
    out = check_output_path(args.out, what="--out", directory=not single_file)
    if out.exists() and not args.overwrite:
        raise InputError(f"{args.out!r} already exists; remove it or pass --overwrite")
    if single_file:
        table = synthetic_people(
            args.rows, seed=args.seed, duplicates=sizes, errors=errors, error_flags=args.error_flags
        )
        with atomic_output(out, what="--out") as tmp:
            pq.write_table(table, tmp)
    else:
        partitions = args.partitions or max(1, -(-args.rows // 1_000_000))
        out = write_synthetic_people(
            args.out,
            args.rows,
            partitions=partitions,
            seed=args.seed,
            duplicates=sizes,
            errors=errors,
            error_flags=args.error_flags,
            progress=not args.quiet,
            overwrite=args.overwrite,
        )
    if not args.quiet:
        print(
            f"wrote {args.rows:,} records to {out} in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
    return 0
