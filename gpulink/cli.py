"""The ``gpulink`` command line: demo, synth, train, predict, cluster, run, bench.

Every command prints a one-line error (no traceback) for a :class:`~gpulink.GpulinkError` and
exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _backend_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="auto", choices=["auto", "cpu", "gpu"])


def _threshold_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threshold", type=float, default=None, help="match probability threshold (default 0.5)"
    )
    p.add_argument(
        "--threshold-weight", type=float, default=None, help="match weight threshold (instead)"
    )


def _check_outputs(*outputs: tuple[str | None, str]) -> None:
    """Check every ``(path, what)`` output before any work: nothing is half-written."""
    from gpulink.errors import InputError
    from gpulink.io import check_output_path

    seen: dict[Path, str] = {}
    for path, what in outputs:
        if path is None:
            continue
        check_output_path(path, what=what)
        key = Path(path).resolve()
        if key in seen:
            raise InputError(f"{seen[key]} and {what} are the same file {path!r}; give two paths")
        seen[key] = what


def _cmd_demo(args) -> int:
    from gpulink.demo import run_demo
    from gpulink.io import atomic_output

    _check_outputs((args.json, "--json summary"))
    summary = run_demo(args.records, seed=args.seed, backend=args.backend)
    if args.json:
        with atomic_output(args.json, what="--json summary") as tmp:
            tmp.write_text(json.dumps(summary, indent=2, default=str))
    return 0


def _cmd_synth(args, rest) -> int:
    from gpulink.datasets import main_synth

    return main_synth(rest)


def _linker(args, model):
    import gpulink as gl

    return gl.Linker(
        args.input if len(args.input) > 1 else args.input[0], model, backend=args.backend
    )


_PLAN_KEYS = ("deterministic_rules", "recall", "u_max_pairs", "seed", "em_rules")


def _read_plan(path: str) -> dict:
    """The training plan of ``train --plan``, checked: a JSON object with only known keys."""
    from gpulink.errors import SettingsError
    from gpulink.io import _did_you_mean

    try:
        plan = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SettingsError(f"training plan {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read training plan {path!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(f"training plan {path!r} is not valid JSON: {exc}") from None
    keys = ", ".join(_PLAN_KEYS)
    if not isinstance(plan, dict):
        raise SettingsError(
            f"training plan {path!r} must be a JSON object with keys {keys}, "
            f"got a JSON {type(plan).__name__}"
        )
    for key in plan:
        if key not in _PLAN_KEYS:
            raise SettingsError(
                f"training plan {path!r}: key {key!r} is unknown"
                f"{_did_you_mean(str(key), list(_PLAN_KEYS))}; use one of {keys}"
            )
    for key in ("deterministic_rules", "em_rules"):
        if not isinstance(plan.get(key, []), list):
            raise SettingsError(
                f"training plan {path!r}: {key!r} must be a list of rules, got {plan[key]!r}"
            )
    recall = plan.get("recall", 0.8)
    if isinstance(recall, bool) or not isinstance(recall, int | float) or not 0 < recall <= 1:
        raise SettingsError(f"training plan {path!r}: 'recall' must be in (0, 1], got {recall!r}")
    mp = plan.get("u_max_pairs", 1)
    if isinstance(mp, bool) or not isinstance(mp, int | float) or not mp >= 1:
        raise SettingsError(f"training plan {path!r}: 'u_max_pairs' must be >= 1, got {mp!r}")
    seed = plan.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SettingsError(f"training plan {path!r}: 'seed' must be an integer, got {seed!r}")
    return plan


def _check_rule_columns(linker, rules) -> None:
    """InputError for a column a rule reads that the input lacks (before any work)."""
    from gpulink.blocking import to_blocking_rule
    from gpulink.expressions import parse
    from gpulink.io import check_columns

    for rule in rules:
        r = to_blocking_rule(rule)
        columns = sorted({c for e in r.expressions for c in parse(e).columns})
        check_columns(linker._data, columns, used_by=f"the rule {r.sql!r}")


def _cmd_train(args) -> int:
    from gpulink.jobs import parse_rule

    plan = _read_plan(args.plan) if args.plan else {}
    # Every rule is parsed before the data is read: a bad rule fails in a second, not after u.
    where = f"training plan {args.plan!r}" if args.plan else ""
    deterministic = [
        parse_rule(r, f"{where}: deterministic_rules[{k}]")
        for k, r in enumerate(plan.get("deterministic_rules", []))
    ]
    if "em_rules" in plan:
        em = [parse_rule(r, f"{where}: em_rules[{k}]") for k, r in enumerate(plan["em_rules"])]
    else:
        em = [parse_rule(r, f"--em-rule {r!r}") for r in args.em_rule or []]
    if args.u_max_pairs < 1:
        from gpulink.errors import SettingsError

        raise SettingsError(f"--u-max-pairs must be >= 1, got {args.u_max_pairs:g}")
    _check_outputs((args.output, "--output model JSON"))
    linker = _linker(args, args.settings)
    _check_rule_columns(linker, [*deterministic, *em])  # a misspelt column fails before u
    t = linker.training
    if deterministic:
        t.estimate_probability_two_random_records_match(
            deterministic, recall=plan.get("recall", 0.8)
        )
    t.estimate_u_using_random_sampling(
        max_pairs=float(plan.get("u_max_pairs", args.u_max_pairs)), seed=plan.get("seed", args.seed)
    )
    for rule in em:
        t.estimate_parameters_using_expectation_maximisation(rule)
    linker.misc.save_model_to_json(args.output, overwrite=True)
    print(f"wrote {args.output}")
    return 0


def _cmd_predict(args) -> int:
    from gpulink.clustering import threshold_probability
    from gpulink.predict import threshold_to_weight

    threshold = args.threshold
    if threshold is None and args.threshold_weight is None:
        threshold = 0.5
    threshold_to_weight(threshold, args.threshold_weight)  # SettingsError before any work
    threshold_probability(args.cluster_threshold)
    _check_outputs((args.output, "--output pairs parquet"), (args.clusters, "--clusters parquet"))
    linker = _linker(args, args.model)
    pairs = linker.inference.predict(
        threshold_match_probability=threshold, threshold_match_weight=args.threshold_weight
    )
    clusters = None
    if args.clusters:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            pairs, args.cluster_threshold
        )
    pairs.to_parquet(args.output, overwrite=True)
    print(f"wrote {len(pairs):,} pairs to {args.output}")
    if clusters is not None:
        clusters.to_parquet(args.clusters, overwrite=True)
        print(f"wrote {len(clusters):,} clustered records to {args.clusters}")
    return 0


def _cmd_cluster(args) -> int:
    from gpulink.clustering import cluster_pairwise_predictions_at_threshold, threshold_probability
    from gpulink.io import to_arrow
    from gpulink.results import write_parquet_atomically

    threshold_probability(args.threshold)
    _check_outputs((args.output, "--output clusters parquet"))
    nodes = to_arrow(args.input)
    edges = to_arrow(args.pairs, what="--pairs")
    out = cluster_pairwise_predictions_at_threshold(
        nodes, edges, node_id_column_name=args.id_column,
        threshold_match_probability=args.threshold, backend=args.backend,
    )  # fmt: skip
    table = out if hasattr(out, "num_rows") else out.to_arrow()
    write_parquet_atomically(table, args.output)
    print(f"wrote {table.num_rows:,} clustered records to {args.output}")
    return 0


def _cmd_run(args, rest) -> int:
    from gpulink.jobs import main_run

    return main_run(rest)


def _cmd_bench(args, rest) -> int:
    import runpy

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    if not script.exists():
        from gpulink.errors import InputError

        raise InputError(
            "gpulink bench runs benchmarks/run.py from a source checkout; clone the repository "
            "and run it there (pip-installed wheels do not ship the benchmarks)"
        )
    return int(runpy.run_path(str(script))["main"](rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gpulink", description="GPU-accelerated record linkage with Splink's model."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="link built-in synthetic people and report accuracy")
    p.add_argument("--records", type=int, default=100_000, help="how many (at least 50)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the summary as JSON to this path")
    _backend_arg(p)

    sub.add_parser(
        "synth", help="generate synthetic people (see gpulink synth --help)", add_help=False
    )
    sub.add_parser("run", help="run a batch job file (see gpulink run --help)", add_help=False)
    sub.add_parser("bench", help="benchmark engines (see gpulink bench --help)", add_help=False)

    p = sub.add_parser("train", help="train a model and write it as JSON")
    p.add_argument("--input", nargs="+", required=True, help="parquet/CSV path(s); several = link")
    p.add_argument("--settings", required=True, help="settings or model JSON")
    p.add_argument("--output", required=True, help="model JSON to write")
    p.add_argument(
        "--plan",
        help="training plan JSON: deterministic_rules, recall, u_max_pairs, seed, em_rules",
    )
    p.add_argument("--u-max-pairs", type=float, default=1e7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--em-rule",
        action="append",
        help="EM training rule: SQL ('l.dob = r.dob') or column names ('dob', 'first_name,dob'), "
        "blocked on as block_on(...); repeatable",
    )
    _backend_arg(p)

    p = sub.add_parser("predict", help="score pairs with a trained model")
    p.add_argument("--model", required=True)
    p.add_argument("--input", nargs="+", required=True)
    p.add_argument("--output", required=True, help="pairs parquet to write")
    p.add_argument("--clusters", help="also cluster and write clusters parquet here")
    p.add_argument("--cluster-threshold", type=float, default=0.95)
    _threshold_args(p)
    _backend_arg(p)

    p = sub.add_parser("cluster", help="cluster scored pairs (connected components)")
    p.add_argument("--input", required=True, help="the records (for singletons)")
    p.add_argument("--pairs", required=True, help="pairs parquet from gpulink predict")
    p.add_argument("--output", required=True)
    p.add_argument("--id-column", default="unique_id")
    p.add_argument("--threshold", type=float, default=0.95)
    _backend_arg(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gpulink`` command."""
    from gpulink.errors import GpulinkError

    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = {"synth": _cmd_synth, "run": _cmd_run, "bench": _cmd_bench}
    try:
        if argv and argv[0] in passthrough:
            return passthrough[argv[0]](None, argv[1:])
        args = build_parser().parse_args(argv)
        handler = {
            "demo": _cmd_demo,
            "train": _cmd_train,
            "predict": _cmd_predict,
            "cluster": _cmd_cluster,
        }[args.command]
        return handler(args)
    except GpulinkError as exc:
        print(f"gpulink: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
