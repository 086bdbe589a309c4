"""Benchmark: encode N records x 6 string columns (plus derived columns) into a RecordTable.

Columns are sampled (numpy, with replacement) from the distinct values of historical_50k's
first_name, surname, dob, birth_place, postcode_fake and occupation, with their null rates, so the
dictionaries are realistic (thousands to tens of thousands of distinct values).

    python benchmarks/encoding.py --rows 10000000

Writes benchmarks/results/encoding-<date>.json with timings, peak RSS and machine/versions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpulink.table import encode_records  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "historical_50k.parquet"
COLUMNS = ["first_name", "surname", "dob", "birth_place", "postcode_fake", "occupation"]
DERIVED = [
    "substr(surname, 1, 4)",
    "lower(first_name)",
    "substr(dob, 1, 4)",
    "NULLIF(regexp_extract(postcode_fake, '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]?', 0), '')",
]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synthesise(n: int, seed: int = 1) -> pa.Table:
    src = pq.read_table(DATA, columns=COLUMNS)
    rng = np.random.default_rng(seed)
    cols = {"unique_id": pa.array(rng.permutation(n).astype(np.int64))}
    for name in COLUMNS:
        col = src.column(name)
        values = col.drop_null().unique()
        null_rate = col.null_count / len(col)
        idx = rng.integers(0, len(values), n)
        mask = rng.random(n) < null_rate
        cols[name] = values.take(pa.array(idx, mask=mask))
    return pa.table(cols)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args()

    t0 = time.perf_counter()
    table = synthesise(args.rows)
    t_gen = time.perf_counter() - t0
    rss_before = peak_rss_mib()
    arrow_before = pa.total_allocated_bytes()

    t0 = time.perf_counter()
    rt = encode_records(table, COLUMNS)
    t_raw = time.perf_counter() - t0
    t0 = time.perf_counter()
    for e in DERIVED:
        rt.ensure_column(e)
    t_derived = time.perf_counter() - t0

    result = {
        "benchmark": "encoding",
        "rows": args.rows,
        "columns": COLUMNS,
        "derived": DERIVED,
        "seconds": {
            "generate": round(t_gen, 3),
            "encode_sort_and_6_raw_columns": round(t_raw, 3),
            "derived_columns": round(t_derived, 3),
            "total_encode": round(t_raw + t_derived, 3),
        },
        "rows_per_second": round(args.rows / (t_raw + t_derived)),
        "distinct_values": {k: c.n_values for k, c in rt.columns.items()},
        "chars_per_column": {
            k: int(c.chars.size) for k, c in rt.columns.items() if c.kind == "string"
        },
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_mib_before_encode": round(rss_before, 1),
        "arrow_bytes_allocated_mib_after": round(pa.total_allocated_bytes() / 2**20, 1),
        "arrow_bytes_allocated_mib_before": round(arrow_before / 2**20, 1),
        "input_table_mib": round(table.nbytes / 2**20, 1),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {"numpy": np.__version__, "pyarrow": pa.__version__},
        "date": dt.datetime.now().isoformat(timespec="seconds"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"encoding-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
