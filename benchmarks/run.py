"""Benchmark harness: one model, one set of blocking rules, several engines, the same data.

Engines: ``splink-duckdb`` (Splink 5 on DuckDB, when installed), ``gpulink-cpu`` and
``gpulink-gpu`` (gpulink's public API; skipped with a message while ``gl.Linker`` does not exist
or, for the GPU, when no GPU is present). Each engine runs in its own subprocess so that peak RSS
figures do not mix. Per engine and size it records stage times (load, λ, u, EM, predict,
cluster), pairs scored and pairs/s, peak RSS (and peak device memory on the GPU), and accuracy
against the synthetic truth (pairwise precision/recall/F1 at the threshold, B-cubed of the
clusters). Results go to ``benchmarks/results/run-<timestamp>.json`` and a Markdown table to
``benchmarks/results/latest.md``.

    python benchmarks/run.py --sizes 100k 1M --engines splink-duckdb gpulink-cpu
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ENGINES = ("splink-duckdb", "gpulink-cpu", "gpulink-gpu")
THRESHOLD = 0.9

# Importing gpulink sets Arrow's allocator for its process and those it starts
# (gpulink/arrow_memory.py); each engine's worker gets the environment this script began with,
# so that Splink runs on pyarrow's own default.
ARROW_POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
ARROW_POOL_AT_START = os.environ.get(ARROW_POOL_VARIABLE)


def engine_env(**extra: str) -> dict:
    """The environment an engine's worker starts with: this script's at its start, plus
    ``PYTHONPATH`` to the checkout and ``extra``."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env.pop(ARROW_POOL_VARIABLE, None)
    if ARROW_POOL_AT_START is not None:
        env[ARROW_POOL_VARIABLE] = ARROW_POOL_AT_START
    return env


def arrow_memory_pool() -> str:
    """The allocator of this process's default Arrow memory pool."""
    import pyarrow as pa

    return pa.default_memory_pool().backend_name


# --------------------------------------------------------------------------------------------
# The model: one spec, parametrised by the library (splink or gpulink)
# --------------------------------------------------------------------------------------------


def build_settings(cl, block_on, SettingsCreator):  # noqa: N803 (the libraries' own name)
    """The benchmark model, written once against Splink's API names.

    ``cl`` is ``splink.comparison_library`` or ``gpulink.comparison_library``; ``block_on`` and
    ``SettingsCreator`` come from the same library.
    """
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.EmailComparison("email"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=prediction_rules(block_on),
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def prediction_rules(block_on):
    return [
        block_on("first_name", "surname"),
        block_on("surname", "dob"),
        block_on("first_name", "dob"),
        block_on("postcode", "dob"),
        block_on("email"),
    ]


def deterministic_rules(block_on):
    return [block_on("first_name", "surname", "dob"), block_on("email")]


def em_rules(block_on):
    return [block_on("first_name", "surname"), block_on("dob")]


# --------------------------------------------------------------------------------------------
# Engines (each runs inside its own worker process)
# --------------------------------------------------------------------------------------------


class Stages:
    """Wall-clock times of named stages."""

    def __init__(self):
        self.times: dict[str, float] = {}

    def __call__(self, name: str):
        stages = self

        class _Timer:
            def __enter__(self):
                self.t0 = time.perf_counter()

            def __exit__(self, *exc):
                stages.times[name] = time.perf_counter() - self.t0

        return _Timer()


def _train_and_predict(linker, block_on, stages: Stages, seed: int, max_pairs: float):
    with stages("lambda"):
        linker.training.estimate_probability_two_random_records_match(
            deterministic_rules(block_on), recall=0.8
        )
    with stages("u"):
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    with stages("em"):
        for rule in em_rules(block_on):
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
    with stages("predict"):
        pairs = linker.inference.predict(threshold_match_probability=0.5)
    return pairs


def run_splink(data: str, seed: int, max_pairs: float) -> dict:
    import logging

    import duckdb
    import pyarrow.parquet as pq
    import splink
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    stages = Stages()
    with stages("load"):
        table = pq.read_table(data)
        db_api = DuckDBAPI()
        df = db_api.register(table.drop_columns(["cluster"]))
    linker = Linker(df, build_settings(cl, block_on, SettingsCreator), log_level=logging.WARNING)
    pairs = _train_and_predict(linker, block_on, stages, seed, max_pairs)
    with stages("cluster"):
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD)
        clusters_t = _relation_to_arrow(clusters, "unique_id, cluster_id")
    pairs_t = _relation_to_arrow(pairs, "unique_id_l, unique_id_r, match_probability")
    scored = _pairs_scored(linker)
    return {
        "versions": {"splink": splink.__version__, "duckdb": duckdb.__version__},
        "stages": stages.times,
        "pairs_scored": scored,
        "pairs": pairs_t,
        "clusters": clusters_t,
        "truth": table.select(["unique_id", "cluster"]),
    }


def _relation_to_arrow(splink_df, columns: str):
    """A Splink DuckDB dataframe's columns as an Arrow table (drained: DuckDB allows one open
    result per connection)."""
    out = splink_df.as_duckdbpyrelation().select(columns).arrow()
    return out.read_all() if hasattr(out, "read_all") else out


def _pairs_scored(linker) -> int | None:
    """Comparisons the prediction rules generate (what predict scored), counted exactly by the
    engine's own blocking analysis, outside the timed stages."""
    try:
        records = linker.blocking_analysis.count_comparisons_from_blocking_rules(
            record_sample_proportion=1.0
        )
        return int(records[-1]["cumulative_comparison_count"])
    except Exception as exc:  # the count is a nicety; never fail the run for it
        print(f"  (could not count comparisons: {exc})", file=sys.stderr)
        return None


def run_gpulink(data: str, seed: int, max_pairs: float, backend: str) -> dict:
    import gpulink as gl  # isort: skip (first: it picks Arrow's allocator, arrow_memory.py)
    import pyarrow.parquet as pq

    if not hasattr(gl, "Linker"):
        raise _Skip("gpulink.Linker does not exist yet (the public API is being built)")
    import gpulink.comparison_library as cl

    if backend == "gpu":
        from gpulink.backend import gpu_status

        ok, why = gpu_status()
        if not ok:
            raise _Skip(f"no GPU: {why}")
    stages = Stages()
    with stages("load"):
        table = pq.read_table(data)
        linker = gl.Linker(
            table.drop_columns(["cluster"]),
            build_settings(cl, gl.block_on, gl.SettingsCreator),
            backend=backend,
        )
    pairs = _train_and_predict(linker, gl.block_on, stages, seed, max_pairs)
    with stages("cluster"):
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, THRESHOLD)
    result = {
        "versions": {"gpulink": gl.__version__},
        "stages": stages.times,
        "pairs_scored": _pairs_scored(linker),
        "pairs": pairs.to_arrow(),
        "clusters": clusters.to_arrow(),
        "truth": table.select(["unique_id", "cluster"]),
    }
    if backend == "gpu":
        result["device_peak_bytes"] = _device_peak()
    return result


def _device_peak() -> int | None:
    try:
        import cupy

        pool = cupy.get_default_memory_pool()
        return int(pool.total_bytes())
    except Exception:
        return None


class _Skip(Exception):
    """The engine cannot run here; the message says why."""


def worker(engine: str, data: str, seed: int, max_pairs: float) -> dict:
    """Run one engine on one dataset in this process; return its JSON-able record."""
    start = time.perf_counter()
    if engine == "splink-duckdb":
        try:
            import splink  # noqa: F401
        except ImportError:
            raise _Skip("splink is not installed") from None
        out = run_splink(data, seed, max_pairs)
    elif engine in ("gpulink-cpu", "gpulink-gpu"):
        out = run_gpulink(data, seed, max_pairs, engine.split("-")[1])
    else:
        raise _Skip(f"unknown engine {engine!r}; choose from {ENGINES}")
    total = time.perf_counter() - start
    # Peak RSS of this process, before evaluation adds its own arrays.
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pool = arrow_memory_pool()
    from gpulink.evaluation import accuracy_at_thresholds, b_cubed

    pairs, truth = out["pairs"], out["truth"]
    acc = accuracy_at_thresholds(pairs, truth, [0.5, THRESHOLD, 0.99])
    bc = b_cubed(out["clusters"], truth)
    stage_sum = sum(out["stages"].values())
    scored = out["pairs_scored"]
    return {
        "engine": engine,
        "records": truth.num_rows,
        "versions": out["versions"],
        "stages_s": out["stages"],
        "total_s": total,
        "pairs_scored": scored,
        "pairs_per_s_predict": (scored / out["stages"]["predict"]) if scored else None,
        "pairs_at_0.5": pairs.num_rows,
        "peak_rss_bytes": peak_kib * 1024,
        "arrow_memory_pool": pool,
        "device_peak_bytes": out.get("device_peak_bytes"),
        "accuracy": {
            "pairwise": {f"{r['threshold']:g}": r for r in acc},
            "b_cubed_at_threshold": bc,
        },
        "stage_sum_s": stage_sum,
    }


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _machine() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor(),
    }
    try:
        with open("/proc/meminfo") as fh:
            info["mem_total_kib"] = int(fh.readline().split()[1])
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0:
            info["gpus"] = out.stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in (
        "gpulink",
        "numpy",
        "pyarrow",
        "numba",
        "numba-cuda",
        "cupy-cuda13x",
        "cupy-cuda12x",
        "splink",
        "duckdb",
    ):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return found


def _dataset(size: int, seed: int, cache: Path) -> Path:
    from gpulink.datasets import synthetic_people

    path = cache / f"people-{size}-seed{seed}.parquet"
    if not path.exists():
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        table = synthetic_people(size, seed=seed)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        print(
            f"generated {size:,} records in {time.perf_counter() - t0:.1f} s -> {path}",
            file=sys.stderr,
        )
    return path


def _run_engine(engine: str, data: Path, seed: int, max_pairs: float, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            engine,
            "--data",
            str(data),
            "--seed",
            str(seed),
            "--max-pairs",
            str(max_pairs),
            "--result",
            str(out),
        ]
        env = engine_env()
        try:
            # cwd: DuckDB spills into ./.tmp; a temporary cwd is removed even after a timeout
            proc = subprocess.run(
                cmd, env=env, timeout=timeout, capture_output=True, text=True, cwd=tmp
            )
        except subprocess.TimeoutExpired:
            return {"engine": engine, "status": "timeout", "message": f"over {timeout:.0f} s"}
        if out.exists():
            return json.loads(out.read_text())
        return {
            "engine": engine,
            "status": "failed",
            "message": ((proc.stderr or proc.stdout).strip().splitlines() or ["no output"])[-1],
        }


def _fmt(x, spec=".1f"):
    return "" if x is None else format(x, spec)


def markdown(results: list[dict]) -> str:
    stages = ("load", "lambda", "u", "em", "predict", "cluster")
    head = (
        "| engine | records | "
        + " | ".join(f"{s} s" for s in stages)
        + " | total s | pairs scored | pairs/s (predict) | peak RSS GiB | device GiB"
        + " | P@0.9 | R@0.9 | F1@0.9 | B³ P | B³ R |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if r.get("status", "ok") != "ok":
            lines.append(
                f"| {r['engine']} | {r.get('records', '')} | {r['status']}: {r.get('message', '')} |"
            )
            continue
        pw = r["accuracy"]["pairwise"][f"{THRESHOLD:g}"]
        bc = r["accuracy"]["b_cubed_at_threshold"]
        cells = [r["engine"], f"{r['records']:,}"]
        cells += [_fmt(r["stages_s"].get(s), ".2f") for s in stages]
        cells += [
            _fmt(r["total_s"], ".1f"),
            _fmt(r["pairs_scored"], ",d"),
            _fmt(r["pairs_per_s_predict"], ",.0f"),
            _fmt(r["peak_rss_bytes"] / 2**30, ".2f"),
            _fmt(r["device_peak_bytes"] / 2**30 if r.get("device_peak_bytes") else None, ".2f"),
            _fmt(pw["precision"], ".3f"),
            _fmt(pw["recall"], ".3f"),
            _fmt(pw["f1"], ".3f"),
            _fmt(bc["precision"], ".3f"),
            _fmt(bc["recall"], ".3f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``gpulink bench`` / ``python benchmarks/run.py``: run the engines at the given sizes."""
    from gpulink.datasets import parse_count

    parser = argparse.ArgumentParser(prog="gpulink bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=parse_count, default=[100_000])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-pairs", type=float, default=1e7, help="u-sampling pairs")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per engine run")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--cache", type=Path, default=None, help="dataset cache (default: tmp)")
    # Internal: run one engine in this process.
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        try:
            record = {"status": "ok", **worker(args.worker, args.data, args.seed, args.max_pairs)}
        except _Skip as why:
            record = {"engine": args.worker, "status": "skipped", "message": str(why)}
        Path(args.result).write_text(json.dumps(record, indent=2, default=str))
        return 0

    cache = args.cache or Path(tempfile.gettempdir()) / "gpulink-bench"
    cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        data = _dataset(size, args.seed, cache)
        for engine in args.engines:
            print(f"[{size:,}] {engine} ...", file=sys.stderr, flush=True)
            record = _run_engine(engine, data, args.seed, args.max_pairs, args.timeout)
            record.setdefault("records", size)
            if record.get("status") != "ok":
                print(f"  {record['status']}: {record.get('message')}", file=sys.stderr)
            else:
                f1 = record["accuracy"]["pairwise"][f"{THRESHOLD:g}"]["f1"]
                print(
                    f"  total {record['total_s']:.1f} s, F1@{THRESHOLD} {f1:.3f}", file=sys.stderr
                )
            results.append(record)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    report = {
        "created": stamp,
        "machine": _machine(),
        "versions": _versions(),
        "sizes": args.sizes,
        "seed": args.seed,
        "threshold": THRESHOLD,
        "results": results,
    }
    json_path = args.out / f"run-{stamp}.json"
    json_path.write_text(json.dumps(report, indent=2, default=str))
    table = markdown(results)
    machine = report["machine"]
    (args.out / "latest.md").write_text(
        f"# gpulink benchmark {stamp}\n\nMachine: {machine.get('cpu_model', machine['processor'])}, "
        f"{machine['cpus']} CPUs, {machine.get('gpus', 'no GPU')}. Threshold {THRESHOLD}.\n\n"
        + table
    )
    print(table)
    print(f"wrote {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
