"""Smoke test of benchmarks/vs_splink.py: both engines on 2,000 synthetic people end to end.

Checks the JSON and Markdown it writes have every field the benchmark promises, that both
engines count the same candidate pairs, and that the gpulink/Splink ratios follow from the
per-engine figures. Timings themselves are not asserted (the machine is shared).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_splink.py"
STAGES = ("load", "lambda", "u", "em", "predict", "cluster")


def _load_vs_splink():
    name = "gpulink_benchmarks_vs_splink"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("splink", reason="the comparison needs splink installed")
    out = tmp_path_factory.mktemp("vs_splink")
    vs = _load_vs_splink()
    argv = ["--datasets", "2000", "--threads", "2", "--max-pairs", "2e5"]
    assert vs.main(argv + ["--out", str(out), "--cache", str(out)]) == 0
    (json_path,) = out.glob("vs_splink-*.json")
    return json.loads(json_path.read_text()), (out / "vs_splink-latest.md").read_text()


def test_report_header(report):
    data, _ = report
    assert data["threads"] == 2
    for key in ("cpu_model", "cpus", "mem_total_kib", "loadavg_at_end"):
        assert key in data["machine"], key
    for pkg in ("gpulink", "splink", "duckdb", "numba", "numpy", "pyarrow"):
        assert pkg in data["versions"], pkg
    assert [d["dataset"] for d in data["datasets"]] == ["synthetic_2000"]


def test_engine_records(report):
    data, _ = report
    engines = data["datasets"][0]["engines"]
    assert set(engines) == {"gpulink-cpu", "splink-duckdb"}
    for name, rec in engines.items():
        assert rec["status"] == "ok", (name, rec.get("message"))
        assert rec["records"] == 2000
        assert set(STAGES) <= set(rec["stages_s"])
        assert all(rec["stages_s"][s] >= 0 for s in STAGES)
        assert math.isclose(rec["total_s"], sum(rec["stages_s"][s] for s in STAGES))
        assert rec["pairs_scored"] > 0
        assert math.isclose(
            rec["pairs_per_s_predict"], rec["pairs_scored"] / rec["stages_s"]["predict"]
        )
        assert rec["peak_rss_bytes"] > 0
        assert len(rec["loadavg_before"]) == 3 and len(rec["loadavg_after"]) == 3
        assert 0 <= rec["accuracy"]["pairwise"]["0.9"]["f1"] <= 1
    gpulink, splink = engines["gpulink-cpu"], engines["splink-duckdb"]
    assert gpulink["threads"]["numba"] == 2 and splink["threads"]["duckdb"] == 2
    assert gpulink["compile_s"] >= 0 and gpulink["compile_error"] is None
    # Both engines count the distinct pairs the prediction rules generate.
    assert gpulink["pairs_scored"] == splink["pairs_scored"]
    assert gpulink["candidate_pairs_before_dedup"] >= gpulink["pairs_scored"]


def test_ratios(report):
    data, markdown = report
    ds = data["datasets"][0]
    g, s = ds["engines"]["gpulink-cpu"], ds["engines"]["splink-duckdb"]
    ratios = ds["ratios"]
    assert ratios["same_pairs_scored"] is True
    for stage in STAGES:
        expected = g["stages_s"][stage] / s["stages_s"][stage]
        assert math.isclose(ratios["time_ratio_gpulink_over_splink"][stage], expected)
    assert math.isclose(
        ratios["time_ratio_gpulink_over_splink"]["total"], g["total_s"] / s["total_s"]
    )
    assert math.isclose(
        ratios["pairs_per_s_ratio"], g["pairs_per_s_predict"] / s["pairs_per_s_predict"]
    )
    assert math.isclose(ratios["peak_rss_ratio"], g["peak_rss_bytes"] / s["peak_rss_bytes"])
    assert set(ratios["targets"]) == {
        "predict_pairs_per_s_at_least_10x",
        "pipeline_at_least_5x_faster",
        "peak_rss_at_most_half",
    }
    assert "**gpulink/Splink**" in markdown and "synthetic_2000" in markdown


def test_absent_historical_is_skipped(tmp_path, monkeypatch):
    vs = _load_vs_splink()
    monkeypatch.setattr(vs, "DATA_DIR", tmp_path / "nowhere")
    label, path, model = vs._resolve_dataset(vs.HISTORICAL, 42, tmp_path)
    assert (label, path, model) == ("historical_50k", None, "historical_50k")
