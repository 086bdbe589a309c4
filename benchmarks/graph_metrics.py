"""Seconds for linker.clustering.compute_graph_metrics on synthetic people (CPU).

PYTHONPATH=. python benchmarks/graph_metrics.py [n_records]
"""

from __future__ import annotations

import sys
import time

import gpulink as gl
import gpulink.comparison_library as cl
from gpulink.datasets import synthetic_people


def main(n: int = 1_000_000) -> None:
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


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
