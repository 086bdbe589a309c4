"""Fused scoring on the GPU: stage times, pairs/s and device memory, with the CPU on the same box.

Data: ``gpulink.datasets.synthetic_people`` at 1M / 10M / 50M records. Model: six comparisons,
two Jaro-Winkler (first_name, surname), two Levenshtein (dob, postcode), two exact with TF
(city, email); m/u at Splink's default start values (training is not what is measured here).
Stages per size: generate, encode (record table + packed columns), plan (blocking), to_device
(record table, dictionaries, plan), histogram (the EM pass over every pair, GPU), score (the
fused predict pass over at most ``--max-pairs`` pair indices, GPU), score_cpu (the same kernel
bodies with Numba on every core, over at most ``--cpu-max-pairs`` pair indices).
Pairs/s are pair *indices* per second (each is decoded, de-duplicated across rules and, when
emitted, compared). Results: ``benchmarks/results/gpu-<gpu>-<timestamp>.json``.

    python benchmarks/gpu.py --sizes 1M 10M 50M

Without a usable GPU it prints why and exits with status 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SIZES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000, "50M": 50_000_000}


def build_settings():
    """The six-comparison benchmark model and its prediction blocking rules."""
    import gpulink as gl
    import gpulink.comparison_library as cl

    return gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]),
            cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]),
            cl.LevenshteinAtThresholds("dob", [1, 2]),
            cl.LevenshteinAtThresholds("postcode", [1, 2]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("email").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            gl.block_on("substr(surname,1,2)", "substr(dob,1,4)"),
            gl.block_on("first_name", "city"),
        ],
    )


def gpu_name() -> str:
    import cupy

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def versions() -> dict:
    import numba
    import numpy

    out = {"python": platform.python_version(), "numba": numba.__version__}
    out["numpy"] = numpy.__version__
    for mod in ("cupy", "numba_cuda"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:
            out[mod] = None
    return out


class Stages:
    """Wall-clock time per stage (device work synchronised before the clock stops)."""

    def __init__(self, sync):
        self.times: dict[str, float] = {}
        self.sync = sync

    def run(self, name, fn, *args, **kwargs):
        self.sync()
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.sync()
        self.times[name] = time.perf_counter() - start
        return out


def bench_size(n_records: int, args) -> dict:
    import cupy
    import numba
    import numpy as np

    import gpulink as gl
    from gpulink.datasets import synthetic_people
    from gpulink.device import memory_budget, peak_tracker
    from gpulink.kernels.score_gpu import (
        default_chunk_pairs,
        device_args,
        device_plan_arrays,
        gamma_histogram_gpu,
        score_gpu,
    )

    sync = cupy.cuda.Device().synchronize
    stages = Stages(sync)
    peak = peak_tracker()
    data = stages.run("generate", synthetic_people, n_records, seed=args.seed)
    linker = gl.Linker(data, build_settings(), backend="gpu", set_up_basic_logging=False)
    scorer = stages.run("encode", linker._scorer, linker.settings.blocking_rules)
    plan = stages.run("plan", scorer.plan)
    stages.run("to_device", lambda: (device_args(scorer), device_plan_arrays(plan)))
    peak()
    total = int(plan.n_candidates)
    n_gpu = min(total, int(args.max_pairs))
    radix = np.array([c.num_levels + 1 for c in scorer.settings.comparisons], np.int64)
    chunk = args.chunk_pairs or default_chunk_pairs(scorer, keep_gammas=False)
    # warm-up: compiles the kernels (cached in-process), not timed
    gamma_histogram_gpu(scorer, plan, 0, min(total, 1 << 16), radix)
    score_gpu(scorer, 0.0, keep_gammas=False, plan=plan, p1=min(total, 1 << 16))

    def histogram():
        hist = np.zeros(int(np.prod(radix)), np.int64)
        for c0 in range(0, n_gpu, chunk):
            hist += gamma_histogram_gpu(scorer, plan, c0, min(n_gpu, c0 + chunk), radix)
            peak()
        return hist

    hist = stages.run("histogram", histogram)
    threshold = gl_threshold(args.threshold)
    scored = stages.run(
        "score",
        score_gpu,
        scorer,
        threshold,
        keep_gammas=False,
        plan=plan,
        p1=n_gpu,
        chunk_pairs=chunk,
    )
    peak()
    n_cpu = min(total, int(args.cpu_max_pairs))
    cpu = stages.run("score_cpu", scorer.score, threshold, keep_gammas=False, plan=plan, p1=n_cpu)
    t = stages.times
    return {
        "records": n_records,
        "candidate_pair_indices": total,
        "emitted_pairs_scored_gpu": int(hist.sum()),
        "pairs_kept_gpu": len(scored.left),
        "pairs_kept_cpu_prefix": len(cpu.left),
        "gpu_pair_indices": n_gpu,
        "cpu_pair_indices": n_cpu,
        "chunk_pairs": chunk,
        "stage_seconds": t,
        "gpu_score_pairs_per_s": n_gpu / t["score"] if t["score"] else None,
        "gpu_histogram_pairs_per_s": n_gpu / t["histogram"] if t["histogram"] else None,
        "cpu_score_pairs_per_s": n_cpu / t["score_cpu"] if t["score_cpu"] else None,
        "cpu_threads": numba.get_num_threads(),
        "device_pool_peak_bytes": peak()[1],
        "device_budget_bytes": memory_budget(),
    }


def gl_threshold(probability: float) -> float:
    from gpulink.predict import threshold_to_weight

    return threshold_to_weight(probability, None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1M", "10M", "50M"], choices=list(SIZES))
    parser.add_argument("--max-pairs", type=float, default=2e10, help="GPU pair indices, at most")
    parser.add_argument("--cpu-max-pairs", type=float, default=2e8, help="CPU pair indices")
    parser.add_argument("--chunk-pairs", type=int, default=None, help="default: memory budget")
    parser.add_argument("--threshold", type=float, default=0.5, help="match probability")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)

    from gpulink.backend import gpu_status

    ok, why = gpu_status()
    if not ok:
        print(f"benchmarks/gpu.py: no usable GPU here ({why}); nothing measured.")
        return 0
    name = gpu_name()
    runs = []
    for size in args.sizes:
        print(f"{size} records on {name} ...", flush=True)
        result = bench_size(SIZES[size], args)
        print(json.dumps(result, indent=2), flush=True)
        runs.append(result)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"gpu-{slug}-{stamp}.json"
    payload = {
        "benchmark": "fused scoring, six comparisons",
        "gpu": name,
        "host": {"platform": platform.platform(), "cpu": platform.processor()},
        "versions": versions(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "runs": runs,
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.rename(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
