"""The command line: demo, train, predict, cluster, and errors without tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gpulink.cli import main
from gpulink.datasets import synthetic_people
from gpulink.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    "link_type": "dedupe_only",
    "comparisons": [
        {
            "output_column_name": "first_name",
            "comparison_levels": [
                {"sql_condition": '"first_name_l" IS NULL OR "first_name_r" IS NULL',
                 "is_null_level": True},
                {"sql_condition": '"first_name_l" = "first_name_r"'},
                {"sql_condition": "ELSE"},
            ],
        },
        {
            "output_column_name": "dob",
            "comparison_levels": [
                {"sql_condition": '"dob_l" IS NULL OR "dob_r" IS NULL', "is_null_level": True},
                {"sql_condition": '"dob_l" = "dob_r"'},
                {"sql_condition": "ELSE"},
            ],
        },
    ],
    "blocking_rules_to_generate_predictions": ["l.surname = r.surname"],
}  # fmt: skip


@pytest.fixture
def files(tmp_path):
    """A small dataset, a settings file and a model trained from them (u only)."""
    data = tmp_path / "people.parquet"
    pq.write_table(synthetic_people(600, seed=5), data)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(SETTINGS))
    model = tmp_path / "model.json"
    argv = ["train", "--input", str(data), "--settings", str(settings), "--output", str(model)]
    assert main([*argv, "--u-max-pairs", "1e4", "--backend", "cpu"]) == 0
    return {"data": str(data), "settings": str(settings), "model": str(model), "dir": tmp_path}


def _train(files, *extra):
    out = files["dir"] / "trained.json"
    argv = ["train", "--input", files["data"], "--settings", files["settings"], "--output"]
    return main([*argv, str(out), "--u-max-pairs", "1e4", "--backend", "cpu", *extra]), out


def _em_rules(model_path) -> list[str]:
    history = json.loads(Path(model_path).read_text())["gpulink"]["training_history"]
    return [h["blocking_rule"] for h in history if "expectation" in h["step"]]


def test_demo_runs_and_reports_accuracy(tmp_path):
    summary = run_demo(3_000, seed=3, backend="cpu", quiet=True)
    assert summary["records"] == 3_000
    assert summary["candidate_pairs"] > 0
    assert 0.5 < summary["pairwise"]["f1"] <= 1.0
    assert (
        main(["demo", "--records", "1500", "--backend", "cpu", "--json", str(tmp_path / "s.json")])
        == 0
    )
    assert json.loads((tmp_path / "s.json").read_text())["records"] == 1500


def test_train_predict_cluster_round_trip(tmp_path):
    people = synthetic_people(2_000, seed=5)
    data = tmp_path / "people.parquet"
    pq.write_table(people, data)
    settings = {
        "link_type": "dedupe_only",
        "comparisons": [
            {
                "output_column_name": "first_name",
                "comparison_levels": [
                    {
                        "sql_condition": '"first_name_l" IS NULL OR "first_name_r" IS NULL',
                        "is_null_level": True,
                    },
                    {"sql_condition": '"first_name_l" = "first_name_r"'},
                    {
                        "sql_condition": 'jaro_winkler_similarity("first_name_l", "first_name_r") >= 0.8'
                    },
                    {"sql_condition": "ELSE"},
                ],
            },
            {
                "output_column_name": "dob",
                "comparison_levels": [
                    {"sql_condition": '"dob_l" IS NULL OR "dob_r" IS NULL', "is_null_level": True},
                    {"sql_condition": '"dob_l" = "dob_r"'},
                    {"sql_condition": "ELSE"},
                ],
            },
        ],
        "blocking_rules_to_generate_predictions": ["l.surname = r.surname"],
    }
    settings_path = tmp_path / "settings.json"
    settings_path.write_text(json.dumps(settings))
    model = tmp_path / "model.json"
    assert (
        main(
            [
                "train",
                "--input",
                str(data),
                "--settings",
                str(settings_path),
                "--output",
                str(model),
                "--u-max-pairs",
                "1e5",
                "--em-rule",
                "l.postcode = r.postcode",
                "--backend",
                "cpu",
            ]
        )
        == 0
    )
    trained = json.loads(model.read_text())
    assert [h["step"] for h in trained["gpulink"]["training_history"]][:1] == [
        "estimate_u_using_random_sampling"
    ]
    pairs = tmp_path / "pairs.parquet"
    clusters = tmp_path / "clusters.parquet"
    assert (
        main(
            [
                "predict",
                "--model",
                str(model),
                "--input",
                str(data),
                "--output",
                str(pairs),
                "--threshold",
                "0.5",
                "--clusters",
                str(clusters),
                "--backend",
                "cpu",
            ]
        )
        == 0
    )
    scored = pq.read_table(pairs)
    assert scored.num_rows > 0
    assert min(scored.column("match_probability").to_pylist()) >= 0.5
    assert pq.read_table(clusters).num_rows == people.num_rows
    out = tmp_path / "clusters2.parquet"
    assert (
        main(
            [
                "cluster",
                "--input",
                str(data),
                "--pairs",
                str(pairs),
                "--output",
                str(out),
                "--backend",
                "cpu",
            ]
        )
        == 0
    )
    assert pq.read_table(out).num_rows == people.num_rows


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    data = tmp_path / "people.parquet"
    pq.write_table(synthetic_people(200, seed=1), data)
    settings = tmp_path / "s.json"
    settings.write_text(
        json.dumps(
            {
                "link_type": "dedupe_only",
                "comparisons": [
                    {
                        "output_column_name": "x",
                        "comparison_levels": [
                            {"sql_condition": '"frist_name_l" = "frist_name_r"'},
                            {"sql_condition": "ELSE"},
                        ],
                    }
                ],
                "blocking_rules_to_generate_predictions": ["l.surname = r.surname"],
            }
        )
    )
    code = main(
        [
            "predict",
            "--model",
            str(settings),
            "--input",
            str(data),
            "--output",
            str(tmp_path / "p.parquet"),
            "--backend",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "InputError" in err and "frist_name" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["predict", "--help"], ["demo", "--help"]])
def test_help(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0


def test_python_dash_m_gpulink_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "gpulink", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: gpulink" in done.stdout and "predict" in done.stdout


def test_em_rule_takes_column_names_or_sql(files):
    # The README's `--em-rule dob`: a bare column is block_on("dob"), not SQL.
    code, out = _train(
        files, "--em-rule", "dob", "--em-rule", "surname, city", "--em-rule", "l.dob = r.dob"
    )
    assert code == 0
    assert _em_rules(out) == [
        'l."dob" = r."dob"',
        '(l."surname" = r."surname") AND (l."city" = r."city")',
        "l.dob = r.dob",
    ]


def test_bad_em_rule_fails_before_any_work(files, capsys):
    code, out = _train(files, "--em-rule", "l.dob = dob")
    err = capsys.readouterr()
    assert code == 2 and not out.exists()
    assert "--em-rule 'l.dob = dob'" in err.err and "Traceback" not in err.err
    assert "u for" not in err.out + err.err  # no training step ran


def test_em_rule_on_a_missing_column_fails_before_any_work(files, capsys):
    code, out = _train(files, "--em-rule", "dobb")
    err = capsys.readouterr()
    assert code == 2 and not out.exists()
    assert "'dobb'" in err.err and "did you mean 'dob'" in err.err and "Traceback" not in err.err
    assert "u for" not in err.out + err.err  # no training step ran


def test_plan_rules_take_column_names(files):
    plan = files["dir"] / "plan.json"
    plan.write_text(
        json.dumps(
            {"deterministic_rules": ["first_name, dob"], "em_rules": ["dob", ["first_name"]]}
        )
    )
    code, out = _train(files, "--plan", str(plan))
    assert code == 0
    assert _em_rules(out) == ['l."dob" = r."dob"', 'l."first_name" = r."first_name"']


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        ("{bad json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object with keys deterministic_rules"),
        (
            '{"em_rulez": [["dob"]]}',
            "key 'em_rulez' is unknown (did you mean 'em_rules'?); use one",
        ),
        ('{"em_rules": "dob"}', "'em_rules' must be a list of rules"),
        ('{"recall": 2}', "'recall' must be in (0, 1]"),
        ('{"em_rules": ["l.dob = r.surname"]}', "em_rules[0]: blocking rule"),
    ],
)
def test_bad_plan_is_one_line_error(files, capsys, content, message):
    plan = files["dir"] / "plan.json"
    if content is not None:
        plan.write_text(content)
    code, out = _train(files, "--plan", str(plan))
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "SettingsError" in err and message in err and str(plan) in err
    assert "Traceback" not in err


def test_job_rules_take_column_names_and_are_checked_up_front():
    from gpulink.blocking import block_on
    from gpulink.errors import SettingsError
    from gpulink.jobs import parse_rule, validate_job

    assert parse_rule("dob") == block_on("dob")
    assert parse_rule("first_name, substr(surname,1,3)") == block_on(
        "first_name", "substr(surname,1,3)"
    )
    assert parse_rule(["first_name", "dob"]) == block_on("first_name", "dob")
    job = {"input": "x.csv", "model": "m.json", "outputs": {"model": "o.json"}}
    validate_job({**job, "training": [{"step": "em", "rule": "dob"}]})
    with pytest.raises(SettingsError, match=r"training\[0\]\.rule: blocking rule 'l.dob = r.x'"):
        validate_job({**job, "training": [{"step": "em", "rule": "l.dob = r.x"}]})
    with pytest.raises(
        SettingsError, match=r"'outputs.modle' is unknown \(did you mean 'model'\?\)"
    ):
        validate_job({**job, "outputs": {"modle": "o.json"}})


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "case",
    [
        "predict-output-under-a-file",
        "predict-output-is-a-folder",
        "predict-clusters-under-a-file",
        "predict-bad-cluster-threshold",
        "predict-bad-threshold",
        "train-output-is-a-folder",
        "cluster-output-under-a-file",
        "cluster-bad-threshold",
        "demo-json-under-a-file",
        "synth-folder-under-a-file",
        "synth-parquet-under-a-file",
        "run-clusters-under-a-file",
    ],
)
def test_outputs_and_thresholds_are_checked_before_any_work(files, capsys, case):
    d = files["dir"]
    blocker = d / "not_a_folder.txt"  # a file where a folder is needed: unwritable, even as root
    blocker.write_text("x")
    pairs = files["dir"] / "pairs.parquet"
    predict = ["predict", "--model", files["model"], "--input", files["data"], "--backend", "cpu"]
    cluster = ["cluster", "--input", files["data"], "--pairs", str(pairs), "--backend", "cpu"]
    argv, culprit = {
        "predict-output-under-a-file": (
            [*predict, "--output", str(blocker / "o.parquet")], str(blocker / "o.parquet")
        ),
        "predict-output-is-a-folder": ([*predict, "--output", str(d)], str(d)),
        "predict-clusters-under-a-file": (
            [*predict, "--output", str(d / "o.parquet"), "--clusters", str(blocker / "c.parquet")],
            str(blocker / "c.parquet"),
        ),
        "predict-bad-cluster-threshold": (
            [*predict, "--output", str(d / "o.parquet"), "--clusters", str(d / "c.parquet"),
             "--cluster-threshold", "2"],
            "threshold_match_probability must be in [0, 1], got 2.0",
        ),
        "predict-bad-threshold": (
            [*predict, "--output", str(d / "o.parquet"), "--threshold", "1.5"],
            "threshold_match_probability must be within [0, 1], got 1.5",
        ),
        "train-output-is-a-folder": (
            ["train", "--input", files["data"], "--settings", files["settings"], "--output",
             str(d), "--backend", "cpu"],
            str(d),
        ),
        "cluster-output-under-a-file": (
            [*cluster, "--output", str(blocker / "c.parquet")], str(blocker / "c.parquet")
        ),
        "cluster-bad-threshold": (
            [*cluster, "--output", str(d / "c.parquet"), "--threshold", "-1"],
            "must be in [0, 1], got -1.0",
        ),
        "demo-json-under-a-file": (
            ["demo", "--records", "100", "--backend", "cpu", "--json", str(blocker / "x.json")],
            str(blocker / "x.json"),
        ),
        "synth-folder-under-a-file": (
            ["synth", "--rows", "100", "--quiet", "--out", str(blocker / "s3")], str(blocker / "s3")
        ),
        "synth-parquet-under-a-file": (
            ["synth", "--rows", "100", "--quiet", "--out", str(blocker / "s.parquet")],
            str(blocker / "s.parquet"),
        ),
        "run-clusters-under-a-file": (
            ["run", str(d / "job.json"), "--local", "1"], str(blocker / "c.parquet")
        ),
    }[case]  # fmt: skip
    if case.startswith("cluster"):
        pq.write_table(pq.read_table(files["data"]).slice(0, 0).select([]), pairs)
    job = {
        "input": files["data"], "model": files["model"],
        "outputs": {"pairs": str(d / "out" / "pairs"), "clusters": str(blocker / "c.parquet")},
    }  # fmt: skip
    (d / "job.json").write_text(json.dumps(job))
    before = _listing(d)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert culprit in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _listing(d) == before  # nothing written, not even a temporary file
    assert "wrote" not in out and "generated" not in out  # no work done


@pytest.mark.parametrize("where", ["under-a-file", "a-folder", "proc"])
def test_save_model_to_json_names_the_users_path(files, where):
    import gpulink as gl
    from gpulink.errors import InputError, SettingsError

    if where == "proc" and not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc")
    blocker = files["dir"] / "not_a_folder.txt"
    blocker.write_text("x")
    path = {
        "under-a-file": str(blocker / "m.json"),
        "a-folder": str(files["dir"]),
        "proc": "/proc/m.json",
    }[where]
    linker = gl.Linker(files["data"], files["model"], backend="cpu")
    with pytest.raises((InputError, SettingsError)) as exc:
        linker.misc.save_model_to_json(path, overwrite=True)
    assert path in str(exc.value) and ".tmp" not in str(exc.value)
    linker.misc.save_model_to_json(str(files["dir"] / "new" / "m.json"))  # new folders are fine
    assert json.loads((files["dir"] / "new" / "m.json").read_text())["comparisons"]


def test_bad_input_files_are_one_line_errors(files, capsys):
    d = files["dir"]
    (d / "fake.parquet").write_text("not parquet")
    (d / "folder").mkdir()
    (d / "folder" / "notes.json").write_text("{}")
    (d / "ragged.csv").write_text("unique_id,first_name\n1,a,b\n")
    cluster = ["cluster", "--input", files["data"], "--output", str(d / "c.parquet")]
    cases = [
        ([*cluster, "--pairs", str(d / "nope.parquet")], "--pairs '", "does not exist"),
        ([*cluster, "--pairs", files["model"]], "cannot tell the format of --pairs", ""),
        ([*cluster, "--pairs", str(d / "fake.parquet")], "cannot be read as parquet", ""),
        (
            ["train", "--input", str(d / "folder"), "--settings", files["settings"],
             "--output", str(d / "m.json")],
            "is not a folder of parquet files (it holds 'notes.json')", "",
        ),
        (
            ["train", "--input", str(d / "ragged.csv"), "--settings", files["settings"],
             "--output", str(d / "m.json")],
            "ragged.csv' cannot be read as CSV: CSV parse error", "",
        ),
    ]  # fmt: skip
    for argv, message, more in cases:
        assert main([*argv, "--backend", "cpu"]) == 2
        err = capsys.readouterr().err
        assert "InputError" in err and message in err and more in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_predict_threshold_weight_alone(files):
    out = files["dir"] / "pairs.parquet"
    argv = ["predict", "--model", files["model"], "--input", files["data"], "--output", str(out)]
    assert main([*argv, "--threshold-weight", "-2", "--backend", "cpu"]) == 0
    weights = pq.read_table(out).column("match_weight").to_pylist()
    assert weights and min(weights) >= -2


@pytest.mark.parametrize("records", ["0", "1", "49", "-5"])
def test_demo_needs_enough_records(tmp_path, capsys, records):
    code = main(["demo", "--records", records, "--backend", "cpu", "--json", str(tmp_path / "s")])
    out, err = capsys.readouterr()
    assert code == 2 and not (tmp_path / "s").exists() and "generated" not in out
    assert "InputError: the demo needs at least 50 records" in err and "Traceback" not in err


def test_demo_runs_with_the_fewest_records(capsys):
    assert main(["demo", "--records", "50", "--seed", "7", "--backend", "cpu"]) == 0


def test_binary_or_folder_given_as_a_json_file(files, capsys):
    d = files["dir"]
    binary = d / "pairs.parquet"
    pq.write_table(pq.read_table(files["data"]).slice(0, 5), binary)
    argv = ["predict", "--model", str(binary), "--input", files["data"], "--output"]
    assert main([*argv, str(d / "o.parquet"), "--backend", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "SettingsError: settings file" in err and str(binary) in err and "UTF-8" in err
    for job in (binary, d):
        assert main(["run", str(job)]) == 2
        err = capsys.readouterr().err
        assert f"SettingsError: cannot read job file {str(job)!r}" in err and "Traceback" not in err
