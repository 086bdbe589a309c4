"""Batch jobs: ``gpulink run job.json`` trains (or loads) a model, predicts and clusters on Dask.

A job file is JSON; relative paths are relative to the job file. Keys:

- ``input`` (required): a parquet/CSV path or a list of them (link jobs);
  ``input_table_aliases``: names for the inputs (optional).
- ``model``: a model JSON path (a Splink or gpulink model) and/or ``training``: a list of steps,
  each ``{"step": "lambda", "rules": [...], "recall": 0.7}``,
  ``{"step": "u", "max_pairs": 1e6, "seed": 1}`` (also ``min_count_per_level``,
  ``num_chunks``, as the training method) or ``{"step": "em", "rule": ...}``.
  A rule is SQL (``"l.dob = r.dob"``), column names (``"dob"``, ``"first_name, dob"``) or a
  list of column expressions (``["first_name", "dob"]``): see :func:`parse_rule`.
- ``outputs``: ``pairs`` (a parquet dataset folder, one part per task), ``clusters`` (a parquet
  file), ``model`` (the trained model JSON). At least one.
- ``threshold_match_probability`` / ``threshold_match_weight`` (predict) and
  ``cluster_threshold_match_probability`` (default 0.95).
- Cluster: ``scheduler_file``, ``local_cuda`` (true) or ``local`` (N workers, default 1); the
  command line's ``--scheduler-file``/``--local-cuda``/``--local`` override them.
- ``n_parts``, ``backend`` (default ``"cpu"``).

A re-run resumes: pairs parts already written are skipped, and a model trained by an earlier run
of the same job is loaded instead of trained again.

>>> spec = {"input": "people.parquet", "model": "model.json",
...         "outputs": {"pairs": "out/pairs", "clusters": "out/clusters.parquet"},
...         "threshold_match_probability": 0.5}
>>> validate_job(spec)["cluster_threshold_match_probability"]
0.95
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from gpulink.errors import BackendUnavailable, GpulinkError, SettingsError
from gpulink.io import _did_you_mean, check_output_path

logger = logging.getLogger("gpulink")

_KEYS = {
    "input", "input_table_aliases", "model", "settings", "training", "outputs",
    "threshold_match_probability", "threshold_match_weight",
    "cluster_threshold_match_probability", "scheduler_file", "local_cuda", "local",
    "n_parts", "backend",
}  # fmt: skip
_OUTPUTS = {"pairs", "clusters", "model"}
_STEPS = {
    "lambda": {"rules", "recall"},
    "u": {"max_pairs", "seed", "min_count_per_level", "num_chunks"},
    "em": {"rule"},
}


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise SettingsError(message)


def parse_rule(rule, where: str = "rule"):
    """A blocking rule as the command line and job files write it.

    SQL text stays SQL (``"l.dob = r.dob"``); text without ``l.``/``r.`` and without ``=`` is
    column expressions separated by commas (``"dob"``, ``"first_name, substr(surname,1,3)"``) and
    becomes ``block_on(...)``, as does a list of column expressions (``["first_name", "dob"]``).
    Errors are SettingsErrors that start with ``where``.

    >>> parse_rule("dob"), parse_rule("first_name, substr(surname,1,3)")
    (block_on('dob'), block_on('first_name', 'substr(surname, 1, 3)'))
    >>> parse_rule("l.dob = r.dob and l.city = r.city").expressions
    ('dob', 'city')
    """
    from gpulink.blocking import (
        _QUALIFIED,
        _find_equals,
        _top_level_scan,
        block_on,
        to_blocking_rule,
    )

    usage = "SQL text ('l.dob = r.dob'), column names ('dob' or 'first_name, dob') or a list of "
    usage += "column names (['first_name', 'dob'])"
    ok = isinstance(rule, str) or (
        isinstance(rule, list) and rule and all(isinstance(e, str) for e in rule)
    )
    _need(ok, f"{where} must be {usage}, got {rule!r}")
    try:
        if isinstance(rule, list):
            return block_on(*rule)
        if _find_equals(rule) or _QUALIFIED.search(rule):
            return to_blocking_rule(rule)
        cuts = [pos for pos, ch, depth in _top_level_scan(rule) if ch == "," and depth == 0]
        parts = [rule[a + 1 : b] for a, b in zip([-1, *cuts], [*cuts, len(rule)])]
        _need(all(p.strip() for p in parts), f"{where} must be {usage}, got {rule!r}")
        return block_on(*parts)
    except SettingsError as exc:
        if str(exc).startswith(where):
            raise
        raise SettingsError(f"{where}: {exc}") from None


def validate_job(spec: dict) -> dict:
    """Check a job dict; return it with defaults filled in. Errors name the key at fault.

    >>> validate_job({"input": "x.csv", "model": "m.json", "outputs": {"pairz": "p"}})
    Traceback (most recent call last):
    ...
    gpulink.errors.SettingsError: job key 'outputs.pairz' is unknown (did you mean 'pairs'?); use one of clusters, model, pairs
    """
    _need(isinstance(spec, dict), f"a job is a JSON object, got {type(spec).__name__}")
    for key in spec:
        _need(key in _KEYS, f"job key {key!r} is unknown{_did_you_mean(str(key), sorted(_KEYS))}; "
                            f"use one of {', '.join(sorted(_KEYS))}")  # fmt: skip
    _need("input" in spec, "job key 'input' is missing: give a parquet/CSV path or a list of them")
    inputs = spec["input"] if isinstance(spec["input"], list) else [spec["input"]]
    _need(inputs and all(isinstance(p, str) for p in inputs),
          f"job key 'input' must be a path or a list of paths, got {spec['input']!r}")  # fmt: skip
    _need("model" in spec or "settings" in spec,
          "the job needs 'model' (a model JSON path) or 'settings' (an inline model)")  # fmt: skip
    if "model" in spec:
        _need(
            isinstance(spec["model"], str), f"job key 'model' must be a path, got {spec['model']!r}"
        )
    if "settings" in spec:
        _need(
            isinstance(spec["settings"], dict), "job key 'settings' must be a JSON object (a model)"
        )
    steps = spec.get("training", [])
    _need(isinstance(steps, list), "job key 'training' must be a list of steps")
    for k, step in enumerate(steps):
        where = f"training[{k}]"
        _need(isinstance(step, dict) and step.get("step") in _STEPS,
              f"{where} needs 'step': one of {', '.join(_STEPS)}, got {step!r}")  # fmt: skip
        allowed = _STEPS[step["step"]] | {"step"}
        for key in step:
            _need(key in allowed, f"{where} key {key!r} is unknown for step {step['step']!r}"
                                  f"{_did_you_mean(str(key), sorted(allowed))}; "
                                  f"use {', '.join(sorted(allowed))}")  # fmt: skip
        if step["step"] == "lambda":
            _need(
                isinstance(step.get("rules"), list) and step["rules"],
                f"{where}.rules must be a non-empty list",
            )
            for j, rule in enumerate(step["rules"]):
                parse_rule(rule, f"{where}.rules[{j}]")
            recall = step.get("recall")
            _need(isinstance(recall, (int, float)) and 0 < recall <= 1,
                  f"{where}.recall must be a number in (0, 1], got {recall!r}")  # fmt: skip
        elif step["step"] == "u":
            mp = step.get("max_pairs", 1e6)
            _need(
                isinstance(mp, (int, float)) and mp >= 1,
                f"{where}.max_pairs must be >= 1, got {mp!r}",
            )
            mc = step.get("min_count_per_level", 100)
            _need(
                mc is None or (isinstance(mc, int) and mc >= 0),
                f"{where}.min_count_per_level must be null or an integer >= 0, got {mc!r}",
            )
            nc = step.get("num_chunks", 10)
            _need(
                isinstance(nc, int) and nc >= 1,
                f"{where}.num_chunks must be an integer >= 1, got {nc!r}",
            )
        else:
            _need("rule" in step, f"{where}.rule is missing: the EM blocking rule")
            parse_rule(step["rule"], f"{where}.rule")
    outputs = spec.get("outputs")
    _need(isinstance(outputs, dict) and outputs,
          "job key 'outputs' is missing: give at least one of pairs, clusters, model")  # fmt: skip
    for key, value in outputs.items():
        _need(
            key in _OUTPUTS,
            f"job key 'outputs.{key}' is unknown{_did_you_mean(str(key), sorted(_OUTPUTS))}; "
            f"use one of {', '.join(sorted(_OUTPUTS))}",
        )
        _need(isinstance(value, str), f"job key 'outputs.{key}' must be a path, got {value!r}")
    for key in ("threshold_match_probability", "cluster_threshold_match_probability"):
        if spec.get(key) is not None:
            v = spec[key]
            _need(
                isinstance(v, (int, float)) and 0 <= v <= 1,
                f"job key {key!r} must be in [0, 1], got {v!r}",
            )
    if spec.get("threshold_match_weight") is not None:
        _need(
            isinstance(spec["threshold_match_weight"], (int, float)),
            "job key 'threshold_match_weight' must be a number",
        )
        _need(spec.get("threshold_match_probability") is None,
              "give threshold_match_probability or threshold_match_weight, not both")  # fmt: skip
    if "local" in spec:
        _need(
            isinstance(spec["local"], int) and spec["local"] >= 1,
            f"job key 'local' must be a worker count >= 1, got {spec['local']!r}",
        )
    if "n_parts" in spec and spec["n_parts"] is not None:
        _need(
            isinstance(spec["n_parts"], int) and spec["n_parts"] >= 1,
            "job key 'n_parts' must be an integer >= 1",
        )
    chosen = [k for k in ("scheduler_file", "local_cuda", "local") if spec.get(k)]
    _need(len(chosen) <= 1, f"choose one cluster: {', '.join(chosen)} are all set")
    out = dict(spec)
    out.setdefault("cluster_threshold_match_probability", 0.95)
    out.setdefault("backend", "cpu")
    return out


@contextlib.contextmanager
def job_client(
    *, scheduler_file: str | None = None, local_cuda: bool = False, local: int | None = None
):
    """A ``distributed.Client`` for a job: an existing scheduler, a ``LocalCUDACluster`` (one
    worker per GPU) or a ``LocalCluster`` of ``local`` single-threaded worker processes whose
    Numba threads share the machine's cores."""
    from distributed import Client, LocalCluster

    if scheduler_file:
        with Client(scheduler_file=scheduler_file) as client:
            yield client
        return
    if local_cuda:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise BackendUnavailable(
                "local_cuda needs dask-cuda: pip install dask-cuda (or use --local N / "
                "--scheduler-file)"
            ) from exc
        with LocalCUDACluster() as cluster, Client(cluster) as client:
            yield client
        return
    n = int(local or 1)
    numba_threads = max(1, (os.cpu_count() or 1) // n)
    with LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
        env={"NUMBA_NUM_THREADS": str(numba_threads)},
    ) as cluster, Client(cluster) as client:  # fmt: skip
        yield client


def _training_fingerprint(spec: dict) -> str:
    keys = ("input", "model", "settings", "training")
    return hashlib.sha256(
        json.dumps({k: spec.get(k) for k in keys}, sort_keys=True, default=str).encode()
    ).hexdigest()


def run_job(spec, *, client=None, scheduler_file=None, local_cuda=None, local=None) -> dict:
    """Run a batch job (a dict or a JSON path): train or load, predict, cluster, write outputs.

    Returns a summary (rows written, seconds per step). With ``client`` the job uses that
    cluster; otherwise the arguments (or the job's keys) choose one.

    >>> run_job("job.json", local=2)  # doctest: +SKIP
    {'pairs': 187000, ...}
    """
    import gpulink as gl
    from gpulink.distributed import cluster_distributed, predict_distributed

    base = Path.cwd()
    if not isinstance(spec, dict):
        path = Path(spec)
        try:
            spec = json.loads(path.read_text())
        except FileNotFoundError:
            raise SettingsError(f"job file {str(path)!r} does not exist") from None
        except json.JSONDecodeError as exc:
            raise SettingsError(f"job file {str(path)!r} is not valid JSON: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read job file {str(path)!r}: {exc}") from None
        base = path.resolve().parent
    spec = validate_job(spec)

    def resolve(p: str) -> Path:
        return Path(p) if Path(p).is_absolute() else base / p

    scheduler_file = scheduler_file or spec.get("scheduler_file")
    local_cuda = local_cuda if local_cuda is not None else spec.get("local_cuda", False)
    local = local or spec.get("local")
    summary: dict = {"seconds": {}}
    outputs = {k: resolve(v) for k, v in spec["outputs"].items()}
    # Every output is checked before the cluster starts: nothing is half-written.
    for key, path in outputs.items():
        check_output_path(path, what=f"outputs.{key}", directory=key == "pairs")
    inputs = spec["input"] if isinstance(spec["input"], list) else [spec["input"]]
    data = [str(resolve(p)) for p in inputs]
    data = data[0] if len(data) == 1 else data
    with contextlib.ExitStack() as stack:
        if client is None:
            client = stack.enter_context(
                job_client(scheduler_file=scheduler_file, local_cuda=bool(local_cuda), local=local)
            )
        start = time.perf_counter()
        model = spec.get("settings") or str(resolve(spec["model"]))
        done_marker = (
            outputs["model"].with_name(outputs["model"].name + ".done")
            if "model" in outputs
            else None
        )
        fingerprint = _training_fingerprint(spec)
        resumed = (
            done_marker is not None and spec.get("training") and done_marker.exists()
            and done_marker.read_text() == fingerprint and outputs["model"].exists()
        )  # fmt: skip
        if resumed:
            logger.info(
                "resuming: loading the model trained by an earlier run from %s", outputs["model"]
            )
            model = str(outputs["model"])
        linker = gl.Linker(
            data, model, backend=spec["backend"], client=client,
            input_table_aliases=spec.get("input_table_aliases"),
        )  # fmt: skip
        summary["seconds"]["load"] = time.perf_counter() - start
        if not resumed:
            _train(linker, spec.get("training", []), summary)
        if "model" in outputs:
            linker.misc.save_model_to_json(str(outputs["model"]), overwrite=True)
            if spec.get("training"):
                done_marker.write_text(fingerprint)
        need_pairs = "pairs" in outputs or "clusters" in outputs
        if need_pairs:
            start = time.perf_counter()
            pairs_dir = outputs.get("pairs")
            prediction = predict_distributed(
                linker, client,
                threshold_match_probability=spec.get("threshold_match_probability"),
                threshold_match_weight=spec.get("threshold_match_weight"),
                n_parts=spec.get("n_parts"),
                output_dir=pairs_dir, collect=pairs_dir is None,
            )  # fmt: skip
            summary["pairs"] = prediction.rows if pairs_dir is not None else len(prediction)
            summary["seconds"]["predict"] = time.perf_counter() - start
            logger.info(
                "predict: %d pairs kept (%.1fs)", summary["pairs"], summary["seconds"]["predict"]
            )
        if "clusters" in outputs:
            start = time.perf_counter()
            clusters = cluster_distributed(
                linker,
                client,
                prediction,
                threshold_match_probability=spec["cluster_threshold_match_probability"],
            )
            clusters.to_parquet(outputs["clusters"], overwrite=True)
            summary["clusters"] = len(clusters)
            summary["seconds"]["cluster"] = time.perf_counter() - start
            logger.info("cluster: %d records written to %s", len(clusters), outputs["clusters"])
    return summary


def _train(linker, steps: list, summary: dict) -> None:
    for k, step in enumerate(steps):
        start = time.perf_counter()
        kind = step["step"]
        logger.info("training step %d/%d: %s", k + 1, len(steps), kind)
        if kind == "lambda":
            linker.training.estimate_probability_two_random_records_match(
                [parse_rule(r) for r in step["rules"]], recall=float(step["recall"])
            )
        elif kind == "u":
            linker.training.estimate_u_using_random_sampling(
                max_pairs=float(step.get("max_pairs", 1e6)), seed=step.get("seed"),
                min_count_per_level=step.get("min_count_per_level", 100),
                num_chunks=step.get("num_chunks", 10),
            )  # fmt: skip
        else:
            linker.training.estimate_parameters_using_expectation_maximisation(
                parse_rule(step["rule"])
            )
        summary["seconds"][f"train_{k}_{kind}"] = time.perf_counter() - start


def main_run(argv: list[str] | None = None) -> int:
    """``gpulink run job.json [--scheduler-file F | --local-cuda | --local N]``; exit code."""
    parser = argparse.ArgumentParser(prog="gpulink run", description="run a batch linkage job")
    parser.add_argument("job", help="the job JSON file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--scheduler-file", help="connect to the Dask scheduler of this file")
    group.add_argument("--local-cuda", action="store_true", help="one dask-cuda worker per GPU")
    group.add_argument("--local", type=int, metavar="N", help="N local worker processes")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    log = logging.getLogger("gpulink")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        summary = run_job(
            args.job, scheduler_file=args.scheduler_file,
            local_cuda=True if args.local_cuda else None, local=args.local,
        )  # fmt: skip
    except GpulinkError as exc:
        print(f"gpulink run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2, default=str))
    return 0
