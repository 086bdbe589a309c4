"""Scale-out benchmark: predict N synthetic people on a LocalCluster of 1 and 2 workers.

    PYTHONPATH=. python benchmarks/distributed.py --records 1000000 --workers 1 2

Writes benchmarks/results/distributed-<date>.json: per worker count the wall time of
predict_distributed (parts written to a temporary parquet dataset), candidate pairs, pairs kept,
and each worker's peak resident memory. Workers are single-threaded Dask processes whose Numba
pools share the machine's cores (NUMBA_NUM_THREADS = cores / workers).
"""

from __future__ import annotations

import sys
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and its name would shadow Dask's
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

import gpulink as gl  # noqa: E402
import gpulink.comparison_library as cl  # noqa: E402
from gpulink.datasets import synthetic_people  # noqa: E402
from gpulink.distributed import predict_distributed  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _settings():
    return gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name"),
            cl.JaroWinklerAtThresholds("surname"),
            cl.ExactMatch("dob"),
            cl.LevenshteinAtThresholds("postcode", [1, 2]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            gl.block_on("surname", "dob"),
            gl.block_on("first_name", "dob"),
            gl.block_on("postcode"),
        ],
    )


def run(n_records: int, worker_counts: list[int], seed: int = 1) -> dict:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    data = synthetic_people(n_records, seed=seed)
    generate_s = time.perf_counter() - start
    linker = gl.Linker(data, _settings(), backend="cpu")
    linker.training.estimate_u_using_random_sampling(1e6, seed=seed)
    start = time.perf_counter()
    linker._record_table()
    cores = os.cpu_count() or 1
    runs = []
    for n in worker_counts:
        env = {"NUMBA_NUM_THREADS": str(max(1, cores // n))}
        with LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None, env=env
        ) as cluster, Client(cluster) as client, tempfile.TemporaryDirectory() as tmp:  # fmt: skip
            # warm-up: each worker loads the kernels (Numba's disk cache) before the timing
            predict_distributed(linker, client, threshold_match_probability=0.99, n_parts=n * 2,
                                output_dir=Path(tmp) / "warm", collect=False)  # fmt: skip
            t0 = time.perf_counter()
            result = predict_distributed(
                linker, client, threshold_match_probability=0.5, output_dir=Path(tmp) / "pairs",
                collect=False,
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            peaks = client.run(_peak_rss_mib)
            stats = dict(linker.last_predict_stats)
            runs.append({
                "workers": n, "numba_threads_per_worker": int(env["NUMBA_NUM_THREADS"]),
                "seconds": seconds, "candidate_pairs": stats["candidate_pairs"],
                "pairs_kept": result.rows, "n_parts": stats["n_parts"],
                "pairs_per_second": stats["candidate_pairs"] / seconds,
                "peak_rss_mib_per_worker": sorted(peaks.values()),
            })  # fmt: skip
            print(json.dumps(runs[-1]))
    return {
        "benchmark": "distributed_predict",
        "records": n_records,
        "generate_seconds": generate_s,
        "client_peak_rss_mib": _peak_rss_mib(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": cores,
            "python": platform.python_version(),
        },  # fmt: skip
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "runs": runs,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    report = run(args.records, args.workers, args.seed)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"distributed-{args.records}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
