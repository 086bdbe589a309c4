"""Generation speed and memory of gpulink.datasets.synthetic_people (and the parquet writer).

Each measurement runs in its own subprocess, so its peak RSS is its own. Writes
``benchmarks/results/synth-<timestamp>.json``.

    python benchmarks/synth.py --rows 10M
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def _measure(mode: str, rows: int, partitions: int, out_dir: str) -> dict:
    import pyarrow as pa

    from gpulink.datasets import synthetic_people, write_synthetic_people

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    if mode == "memory":
        table = synthetic_people(rows, seed=0)
        elapsed = time.perf_counter() - t0
        output_bytes = table.nbytes
        allocated = pa.total_allocated_bytes()
    else:
        path = write_synthetic_people(
            Path(out_dir) / "people", rows, partitions=partitions, seed=0, progress=False
        )
        elapsed = time.perf_counter() - t0
        output_bytes = sum(f.stat().st_size for f in path.glob("*.parquet"))
        allocated = None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "mode": mode,
        "rows": rows,
        "partitions": partitions if mode == "parquet" else None,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed,
        "peak_rss_bytes": peak,
        "rss_before_bytes": base,
        "output_bytes": output_bytes,
        "arrow_allocated_bytes": allocated,
        "peak_over_output": (peak - base) / output_bytes if mode == "memory" else None,
    }


def main(argv: list[str] | None = None) -> int:
    from gpulink.datasets import parse_count

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=parse_count, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--modes", nargs="+", default=["memory", "parquet"])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(_measure(args.worker, args.rows, args.partitions, tmp)))
        return 0
    results = []
    for mode in args.modes:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                mode,
                "--rows",
                str(args.rows),
                "--partitions",
                str(args.partitions),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        print(json.dumps(record), file=sys.stderr)
        results.append(record)
    import numpy
    import pyarrow

    stamp = time.strftime("%Y%m%dT%H%M%S")
    report = {
        "created": stamp,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {"numpy": numpy.__version__, "pyarrow": pyarrow.__version__},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"synth-{stamp}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
