"""Seconds for linker.clustering.compute_graph_metrics on synthetic people (CPU); the result is
recorded as ``benchmarks/results/graph_metrics-<n>-<time>.json``.

PYTHONPATH=. python benchmarks/graph_metrics.py [n_records]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import gpulink as gl
import gpulink.comparison_library as cl
from gpulink.datasets import synthetic_people

RESULTS = Path(__file__).resolve().parent / "results"


def main(n: int = 1_000_000, out: Path = RESULTS) -> Path:
    df = synthetic_people(n, seed=42)
    settings = gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.ExactMatch("first_name"),
            cl.ExactMatch("surname"),
            cl.ExactMatch("dob"),
            cl.ExactMatch("city"),
        ],
        blocking_rules_to_generate_predictions=[
            gl.block_on("surname", "dob"),
            gl.block_on("first_name", "dob"),
        ],
        probability_two_random_records_match=1e-6,
    )
    linker = gl.Linker(df, settings, backend="cpu", set_up_basic_logging=False)
    pairs = linker.inference.predict()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.9)
    linker.clustering.compute_graph_metrics(pairs, clusters)  # compile the kernels
    start = time.perf_counter()
    g = linker.clustering.compute_graph_metrics(pairs, clusters)
    seconds = time.perf_counter() - start
    bridges = int(g.edges.to_arrow().column("is_bridge").to_numpy(zero_copy_only=False).sum())
    print(
        f"{n:,} records, {len(pairs):,} pairs, {len(g.edges):,} edges >= 0.9 "
        f"({bridges:,} bridges), {len(g.clusters):,} clusters: compute_graph_metrics "
        f"{seconds:.2f} s"
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from comparators import machine_info, versions

    result = {
        "benchmark": "graph_metrics",
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "sizes": {
            "records": n, "pairs": len(pairs), "edges": len(g.edges), "bridges": bridges,
            "clusters": len(g.clusters),
        },
        "compute_graph_metrics_s": seconds,
    }  # fmt: skip
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"graph_metrics-{n}-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
