"""Calls per second of ``linker.inference.score_pair`` (one pair per call), gpulink vs Splink.

A model with term-frequency adjustments (fixed m, u and λ, the same in both engines) on
fake_1000; each call scores one record of the input against another (a pair drawn at random,
seeded), the way a real-time service scores an incoming record against a candidate. The first
call (kernel loading, term-frequency lookups) is left out of the timing.

    python benchmarks/realtime.py --calls 2000 [--splink-calls 100] [--out results/]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "fake_1000.csv"


def settings_dict() -> dict:
    import splink.comparison_library as scl
    from splink import SettingsCreator, block_on

    d = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            scl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            scl.JaroWinklerAtThresholds("surname"),
            scl.DateOfBirthComparison("dob", input_is_string=True),
            scl.ExactMatch("city").configure(term_frequency_adjustments=True),
            scl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name"), block_on("dob")],
    ).create_settings_dict("duckdb")
    rng = np.random.default_rng(0)
    for comparison in d["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        m = np.sort(rng.dirichlet(np.ones(len(levels))))[::-1]
        u = np.sort(rng.dirichlet(np.ones(len(levels))))
        for level, mm, uu in zip(levels, m, u):
            level["m_probability"] = float(mm)
            level["u_probability"] = float(max(uu, 1e-4))
    d["probability_two_random_records_match"] = 0.001
    return d


def calls_per_second(score, pairs) -> float:
    score(*pairs[0])  # warm-up: kernels, term-frequency lookups
    start = time.perf_counter()
    for left, right in pairs:
        score(left, right)
    return len(pairs) / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--splink-calls", type=int, default=100, help="0: skip Splink")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "benchmarks" / "results",
        help="folder for the JSON result",
    )
    args = parser.parse_args(argv)

    import pandas as pd
    from comparators import machine_info, versions

    import gpulink as gl

    df = pd.read_csv(args.data)
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]
    rng = np.random.default_rng(1)
    index = rng.integers(0, len(records), size=(max(args.calls, args.splink_calls), 2))
    pairs = [(records[i], records[j]) for i, j in index]
    settings = settings_dict()
    linker = gl.Linker(df, settings, backend="cpu")
    result = {
        "benchmark": "realtime",
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "records": len(df),
        "gpulink_calls": args.calls,
        "gpulink_calls_per_second": calls_per_second(
            linker.inference.score_pair, pairs[: args.calls]
        ),
    }
    if args.splink_calls:
        import splink
        from splink import DuckDBAPI

        sl = splink.Linker(DuckDBAPI().register(df), settings, log_level=logging.ERROR)

        def splink_score(left, right):
            return sl.inference.score_pair(left, right).as_pandas_dataframe()

        result["splink_calls"] = args.splink_calls
        result["splink_calls_per_second"] = calls_per_second(
            splink_score, pairs[: args.splink_calls]
        )
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        (args.out / f"realtime-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
