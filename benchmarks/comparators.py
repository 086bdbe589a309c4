"""Pairs per second of each string comparator: gpulink (CPU, GPU) vs rapidfuzz and DuckDB.

Pairs are real name variants: first names and surnames from historical_50k, half drawn from
records of the same person (true-match-like pairs) and half at random. Every engine scores the
same pairs in the same run; each figure is the best of ``--repeats`` timed runs after a warm-up
(which also compiles the kernels).

Engines:
  gpulink-cpu-kernel   the prange launcher on pre-encoded code points (what predict() runs)
  gpulink-cpu-api      gpulink.comparators.*(a, b, backend="cpu") on Python lists: includes
                       the conversion to UTF-32 code points
  gpulink-cpu-api-arrow  the same on pyarrow string arrays
  gpulink-gpu-kernel   the CUDA launcher on device-resident code points (when a GPU is usable)
  rapidfuzz            rapidfuzz.process.cpdist(a, b, scorer=..., workers=-1)
  duckdb               SELECT sum(f(a, b)) over an Arrow table (Splink's usual engine)

    python benchmarks/comparators.py --pairs 1000000
    python benchmarks/comparators.py --strings full_names   # long strings
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
METRICS = ["jaro", "jaro_winkler", "levenshtein", "damerau_levenshtein", "jaccard"]
DUCKDB_FN = {
    "jaro": "jaro_similarity",
    "jaro_winkler": "jaro_winkler_similarity",
    "levenshtein": "levenshtein",
    "damerau_levenshtein": "damerau_levenshtein",
    "jaccard": "jaccard",
}


#: Which strings ``--strings`` compares: columns of historical_50k.
STRING_SETS = {
    "names": ("first_name", "surname"),  # short: ~6 code points
    "full_names": ("full_name",),  # long: ~20 code points, as emails and addresses
}


def name_pairs(
    n: int, seed: int = 0, columns: tuple[str, ...] = STRING_SETS["names"]
) -> tuple[list[str], list[str]]:
    """``n`` pairs of values of ``columns``: half within a true cluster, half random."""
    import pandas as pd

    path = DATA / "historical_50k.parquet"
    if not path.exists():
        sys.exit(f"reference data not found at {path}")
    df = pd.read_parquet(path, columns=["cluster", *columns])
    rng = np.random.default_rng(seed)
    a: list[str] = []
    b: list[str] = []
    for c, col in enumerate(columns):
        sub = df[["cluster", col]].dropna()
        sub = sub[sub[col] != ""].sort_values("cluster", kind="stable")
        values = sub[col].to_numpy()
        codes, starts, counts = np.unique(
            sub["cluster"].to_numpy(), return_index=True, return_counts=True
        )
        del codes
        multi = counts >= 2
        starts, counts = starts[multi], counts[multi]
        n_col = n * (c + 1) // len(columns) - n * c // len(columns)
        k = n_col // 2
        which = rng.integers(0, len(starts), k)
        i = starts[which] + rng.integers(0, counts[which])
        j = starts[which] + rng.integers(0, counts[which])
        a += values[i].tolist()
        b += values[j].tolist()
        k = n_col - k
        a += values[rng.integers(0, len(values), k)].tolist()
        b += values[rng.integers(0, len(values), k)].tolist()
    order = rng.permutation(len(a))
    return [a[o] for o in order], [b[o] for o in order]


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (compiles)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def machine_info() -> dict:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "hostname": platform.node(),
    }
    from gpulink.backend import gpu_status

    ok, reason = gpu_status()
    info["gpu"] = None
    info["gpu_status"] = reason
    if ok:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return info


def versions() -> dict:
    import duckdb
    import numba
    import pyarrow
    import rapidfuzz

    import gpulink

    return {
        "python": platform.python_version(),
        "gpulink": gpulink.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "pyarrow": pyarrow.__version__,
        "rapidfuzz": rapidfuzz.__version__,
        "duckdb": duckdb.__version__,
        "gpulink_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    """The checkout's short commit hash (None outside a git checkout)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--metrics", nargs="+", default=METRICS, choices=METRICS)
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument(
        "--strings",
        choices=sorted(STRING_SETS),
        default="names",
        help="names: first names and surnames (short); full_names: full names (long)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    import numba
    import pyarrow as pa
    from rapidfuzz.distance import DamerauLevenshtein, Jaro, JaroWinkler, Levenshtein
    from rapidfuzz.process import cpdist

    from gpulink import comparators as gc
    from gpulink.backend import gpu_status
    from gpulink.kernels import comparator_launch as launch

    scorers = {
        "jaro": Jaro.similarity,
        "jaro_winkler": JaroWinkler.similarity,
        "levenshtein": Levenshtein.distance,
        "damerau_levenshtein": DamerauLevenshtein.distance,
    }
    a, b = name_pairs(args.pairs, columns=STRING_SETS[args.strings])
    arrow_a, arrow_b = pa.array(a), pa.array(b)
    ea, eb = gc.encode(a), gc.encode(b)
    valid = (ea.valid & eb.valid).astype(np.uint8)
    lengths = np.concatenate([np.diff(ea.offsets), np.diff(eb.offsets)])
    gpu_ok = gpu_status()[0]
    if gpu_ok:
        import cupy

        dev = [cupy.asarray(x) for x in (ea.chars, ea.offsets, eb.chars, eb.offsets, valid)]
    con = None
    if not args.no_duckdb:
        import duckdb

        con = duckdb.connect()
        con.register("pairs", pa.table({"a": a, "b": b}))

    load_before = os.getloadavg()
    results: dict[str, dict[str, float]] = {}
    for metric in args.metrics:
        code = launch.METRICS[metric]
        row: dict[str, float] = {}

        def kernel(code=code):
            launch.run_cpu(code, ea.chars, ea.offsets, eb.chars, eb.offsets, valid)

        row["gpulink-cpu-kernel"] = args.pairs / best_time(kernel, args.repeats)
        api = getattr(gc, metric)
        row["gpulink-cpu-api"] = args.pairs / best_time(lambda api=api: api(a, b, backend="cpu"), 1)
        row["gpulink-cpu-api-arrow"] = args.pairs / best_time(
            lambda api=api: api(arrow_a, arrow_b, backend="cpu"), 1
        )
        if gpu_ok:

            def gpu_kernel(code=code):
                launch.run_gpu(code, *dev, xp=cupy)
                cupy.cuda.Device().synchronize()

            row["gpulink-gpu-kernel"] = args.pairs / best_time(gpu_kernel, args.repeats)
            row["gpulink-gpu-api"] = args.pairs / best_time(
                lambda api=api: api(a, b, backend="gpu"), 1
            )
        if metric in scorers:
            scorer = scorers[metric]
            row["rapidfuzz"] = args.pairs / best_time(
                lambda scorer=scorer: cpdist(a, b, scorer=scorer, workers=-1), 1
            )
        if con is not None:
            fn = DUCKDB_FN[metric]
            sql = f"select sum({fn}(a, b)) from pairs"
            if metric == "jaccard":
                sql = f"select sum({fn}(a, b)) from pairs where a <> '' and b <> ''"
            row["duckdb"] = args.pairs / best_time(lambda sql=sql: con.execute(sql).fetchall(), 1)
        results[metric] = row

    info = machine_info()
    record = {
        "benchmark": "comparators",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "versions": versions(),
        "numba_threads": numba.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "sizes": {
            "pairs": args.pairs,
            "strings": args.strings,
            "columns": list(STRING_SETS[args.strings]),
            "mean_code_points": float(lengths.mean()),
            "max_code_points": int(lengths.max()),
            "same_cluster_fraction": 0.5,
        },
        "pairs_per_second": results,
    }
    slug = re.sub(r"[^a-z0-9]+", "-", info["cpu_model"].lower()).strip("-")[:40] or "cpu"
    machine = f"{slug}-{info['cores']}c" + (
        "-" + re.sub(r"\W+", "-", info["gpu"]).lower() if info["gpu"] else ""
    )
    args.out.mkdir(parents=True, exist_ok=True)
    which = "" if args.strings == "names" else f"-{args.strings}"
    commit = record["versions"]["gpulink_commit"]
    stamp = dt.date.today().isoformat() + (f"-{commit}" if commit else "")
    path = args.out / f"comparators{which}-{machine}-{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)

    engines = sorted({e for row in results.values() for e in row}, key=_engine_order)
    print(f"{args.pairs:,} {args.strings} pairs, mean {lengths.mean():.1f} code points; "
          f"{info['cpu_model']} x{info['cores']}; load {load_before[0]:.1f}")  # fmt: skip
    print(f"{'million pairs/s':20s}" + "".join(f"{e:>22s}" for e in engines))
    for metric, row in results.items():
        cells = "".join(f"{row[e] / 1e6:22.2f}" if e in row else f"{'-':>22s}" for e in engines)
        print(f"{metric:20s}{cells}")
    print(f"written {path}")
    return record


def _engine_order(name: str) -> int:
    order = ["gpulink-cpu-kernel", "gpulink-cpu-api", "gpulink-cpu-api-arrow",
             "gpulink-gpu-kernel", "gpulink-gpu-api", "rapidfuzz", "duckdb"]  # fmt: skip
    return order.index(name) if name in order else len(order)


if __name__ == "__main__":
    main()
