"""Scale-out on Dask: a 2-process LocalCluster must give exactly the single-process results."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import gpulink as gl
import gpulink.comparison_library as cl
from gpulink.datasets import synthetic_people
from gpulink.distributed import (
    PartitionedPrediction,
    cluster_distributed,
    pattern_counts_distributed,
    predict_distributed,
    split_ranges,
)
from gpulink.errors import InputError, SettingsError
from gpulink.jobs import run_job, validate_job

distributed = pytest.importorskip("distributed")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def client():
    import cloudpickle

    # the worker-killing helper below must reach the workers by value (tests/ is not importable there)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        env={"NUMBA_NUM_THREADS": "1"},
    )  # fmt: skip
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _data(name):
    if not (DATA / name).exists():
        pytest.skip(f"reference data {DATA / name} is absent (see shared/data/README.md)")
    return DATA / name


def _fake_linker(**extra):
    df = pd.read_csv(_data("fake_1000.csv"))
    settings = gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7]),
            cl.LevenshteinAtThresholds("surname", [1, 2]),
            cl.ExactMatch("dob"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("email"),
        ],
        blocking_rules_to_generate_predictions=[
            gl.block_on("first_name"),
            gl.block_on("surname"),
            gl.block_on("dob"),
        ],
        **extra,
    )
    linker = gl.Linker(df, settings, backend="cpu")
    linker.training.estimate_u_using_random_sampling(1e5, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(gl.block_on("dob"))
    return linker


@pytest.fixture(scope="module")
def fake_linker():
    return _fake_linker(retain_intermediate_calculation_columns=True)


def _assert_same(distributed_result, single):
    assert distributed_result.to_arrow().equals(single.to_arrow())
    np.testing.assert_array_equal(distributed_result.left_index, single.left_index)
    np.testing.assert_array_equal(distributed_result.right_index, single.right_index)


def test_split_ranges_cover_the_space_once():
    for n, k in [(0, 1), (1, 3), (10, 3), (1000003, 17)]:
        ranges = split_ranges(n, k)
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
        assert max(b - a for a, b in ranges) - min(b - a for a, b in ranges) <= 1


@pytest.mark.parametrize("n_parts", [None, 1, 13])
def test_predict_fake_1000_identical(client, fake_linker, n_parts):
    single = fake_linker.inference.predict(threshold_match_probability=0.3)
    result = predict_distributed(
        fake_linker, client, threshold_match_probability=0.3, n_parts=n_parts
    )
    assert len(single) > 0
    _assert_same(result, single)


def test_predict_historical_subset_identical(client):
    table = pq.read_table(_data("historical_50k.parquet")).slice(0, 8000)
    settings = gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name"),
            cl.JaroWinklerAtThresholds("surname"),
            cl.ExactMatch("dob"),
            cl.LevenshteinAtThresholds("postcode_fake", [1, 2]),
            cl.ExactMatch("birth_place").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            gl.block_on("first_name", "surname"), gl.block_on("dob"), gl.block_on("postcode_fake"),
        ],
    )  # fmt: skip
    linker = gl.Linker(table, settings, backend="cpu")
    linker.training.estimate_u_using_random_sampling(2e5, seed=3)
    linker.training.estimate_parameters_using_expectation_maximisation(gl.block_on("dob"))
    single = linker.inference.predict()  # no threshold: every candidate pair
    _assert_same(predict_distributed(linker, client, n_parts=9), single)


@pytest.fixture(scope="module")
def synthetic_linker():
    df = synthetic_people(5000, seed=1)
    settings = gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name"),
            cl.JaroWinklerAtThresholds("surname"),
            cl.ExactMatch("dob"),
            cl.ExactMatch("postcode"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[gl.block_on("surname"), gl.block_on("dob")],
    )
    linker = gl.Linker(df, settings, backend="cpu")
    linker.training.estimate_u_using_random_sampling(2e5, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(gl.block_on("surname"))
    return linker


def test_predict_synthetic_identical_and_clusters(client, synthetic_linker, tmp_path):
    single = synthetic_linker.inference.predict(threshold_match_weight=-5)
    _assert_same(predict_distributed(synthetic_linker, client, threshold_match_weight=-5), single)
    expected = synthetic_linker.clustering.cluster_pairwise_predictions_at_threshold(single, 0.9)
    written = predict_distributed(
        synthetic_linker, client, threshold_match_weight=-5, output_dir=tmp_path, collect=False
    )
    assert isinstance(written, PartitionedPrediction) and written.rows == len(single)
    assert written.to_arrow().equals(single.to_arrow())
    for threshold in (0.9, 0.0, 1.0):
        expected = synthetic_linker.clustering.cluster_pairwise_predictions_at_threshold(
            single, threshold
        )
        for source in (written, single):
            got = cluster_distributed(synthetic_linker, client, source, threshold)
            assert got.to_arrow().equals(expected.to_arrow())


def test_pattern_counts_identical(client, fake_linker, synthetic_linker):
    for linker, rule in [
        (fake_linker, gl.block_on("dob")),
        (synthetic_linker, gl.block_on("surname")),
    ]:
        expected = linker._scorer([rule]).pattern_counts()
        got = pattern_counts_distributed(linker, client, rule, n_parts=7)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    expected = fake_linker._scorer(fake_linker.settings.blocking_rules).pattern_counts()
    got = pattern_counts_distributed(fake_linker, client)
    np.testing.assert_array_equal(got[1], expected[1])


# -- fault tolerance and resume ----------------------------------------------------------------


def _install_killer(marker: str, victim_p0: int):
    """On a worker: the task scoring the range starting at ``victim_p0`` kills its process the
    first time (the marker file records that it did)."""
    import gpulink.distributed as d

    original = getattr(d, "_original_score_part", d.score_part)
    d._original_score_part = original

    def killing(payload, p0, p1, *args, **kwargs):
        if p0 == victim_p0 and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)  # the nanny restarts the worker; the scheduler reruns the task
        return original(payload, p0, p1, *args, **kwargs)

    d.score_part = killing


def _remove_killer():
    import gpulink.distributed as d

    if hasattr(d, "_original_score_part"):
        d.score_part = d._original_score_part


@pytest.mark.parametrize("to_disk", [False, True])
def test_worker_killed_mid_prediction_changes_nothing(client, fake_linker, tmp_path, to_disk):
    single = fake_linker.inference.predict(threshold_match_probability=0.3)
    n_parts = 24
    plan_pairs = fake_linker._scorer(fake_linker.settings.blocking_rules).plan().n_candidates
    victim = split_ranges(plan_pairs, n_parts)[n_parts // 2][0]
    marker = tmp_path / "killed"
    client.run(_install_killer, str(marker), victim)
    try:
        result = predict_distributed(
            fake_linker, client, threshold_match_probability=0.3, n_parts=n_parts,
            output_dir=tmp_path / "pairs" if to_disk else None, retries=3,
        )  # fmt: skip
    finally:
        client.run(_remove_killer)
    assert marker.exists(), "the victim task never ran: the test did not kill a worker"
    _assert_same(result, single)
    client.wait_for_workers(2, timeout=60)


def test_resume_skips_written_parts(client, fake_linker, tmp_path):
    single = fake_linker.inference.predict(threshold_match_probability=0.3)
    first = predict_distributed(
        fake_linker,
        client,
        threshold_match_probability=0.3,
        n_parts=6,
        output_dir=tmp_path,
        collect=False,
    )
    assert first.stats["parts_skipped"] == 0
    mtimes = {p: p.stat().st_mtime_ns for p in first.parts}
    first.parts[2].unlink()  # as if the job died before writing part 2
    again = predict_distributed(
        fake_linker, client, threshold_match_probability=0.3, output_dir=tmp_path, collect=False
    )
    assert again.stats["parts_skipped"] == 5
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in first.parts if p != first.parts[2])
    assert again.to_arrow().equals(single.to_arrow())
    assert not list(tmp_path.glob("**/*.tmp"))
    with pytest.raises(InputError, match="different prediction"):
        predict_distributed(
            fake_linker, client, threshold_match_probability=0.9, output_dir=tmp_path
        )
    with pytest.raises(InputError, match="n_parts=6"):
        predict_distributed(
            fake_linker, client, threshold_match_probability=0.3, n_parts=3, output_dir=tmp_path
        )


# -- batch jobs --------------------------------------------------------------------------------


def test_run_job_end_to_end(client, tmp_path):
    source = _data("fake_1000.csv")
    # the model through the public API, saved as JSON: the job starts from it
    base = gl.SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.9, 0.7]),
            cl.ExactMatch("surname"),
            cl.ExactMatch("dob"),
        ],
        blocking_rules_to_generate_predictions=[gl.block_on("first_name"), gl.block_on("dob")],
    )
    model = tmp_path / "base.json"
    gl.Linker(str(source), base, backend="cpu").misc.save_model_to_json(str(model))
    job = {
        "input": str(source),
        "model": "base.json",
        "training": [
            {"step": "lambda", "rules": [["first_name", "surname", "dob"]], "recall": 0.7},
            {"step": "u", "max_pairs": 1e5, "seed": 2},
            {"step": "em", "rule": "l.dob = r.dob"},
        ],
        "outputs": {
            "pairs": "out/pairs",
            "clusters": "out/clusters.parquet",
            "model": "out/model.json",
        },
        "threshold_match_probability": 0.2,
        "cluster_threshold_match_probability": 0.9,
        "n_parts": 5,
    }
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    summary = run_job(path, client=client)
    # the reference: the same steps in one process
    linker = gl.Linker(str(source), str(model), backend="cpu")
    linker.training.estimate_probability_two_random_records_match(
        [gl.block_on("first_name", "surname", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(1e5, seed=2)
    linker.training.estimate_parameters_using_expectation_maximisation("l.dob = r.dob")
    single = linker.inference.predict(threshold_match_probability=0.2)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(single, 0.9)
    out = tmp_path / "out"
    assert summary["pairs"] == len(single)
    parts = sorted((out / "pairs").glob("part-*.parquet"))
    assert len(parts) == 5
    assert PartitionedPrediction(out / "pairs", parts, 0, 0).to_arrow().equals(single.to_arrow())
    assert pq.read_table(out / "clusters.parquet").equals(clusters.to_arrow())
    assert json.loads((out / "model.json").read_text())[
        "probability_two_random_records_match"
    ] == pytest.approx(linker.settings.probability_two_random_records_match, rel=0, abs=0)
    # a re-run loads the trained model and skips every written part
    again = run_job(path, client=client)
    assert not any(k.startswith("train_") for k in again["seconds"])
    assert again["pairs"] == len(single)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"inputs": "x"}, "job key 'inputs' is unknown"),
        ({"outputs": {"pairz": "p"}}, "outputs.pairz"),
        ({"training": [{"step": "em"}]}, r"training\[0\].rule is missing"),
        (
            {"training": [{"step": "lambda", "rules": ["l.a = r.a"], "recall": 2}]},
            r"training\[0\].recall",
        ),
        ({"training": [{"step": "u", "num_chunks": 0}]}, r"training\[0\].num_chunks"),
        (
            {"training": [{"step": "u", "min_count_per_level": -1}]},
            r"training\[0\].min_count_per_level",
        ),
        ({"threshold_match_probability": 1.5}, "threshold_match_probability"),
        ({"local": 2, "local_cuda": True}, "choose one cluster"),
    ],
)
def test_job_validation_names_the_key(change, message):
    spec = {"input": "x.csv", "model": "m.json", "outputs": {"pairs": "p"}}
    spec.update(change)
    with pytest.raises(SettingsError, match=message):
        validate_job(spec)


def test_run_job_missing_file_is_a_settings_error(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        run_job(tmp_path / "nope.json")
