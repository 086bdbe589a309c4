"""Splink 5 code runs after an import change: registered tables, DuckDBAPI, ColumnExpression in
block_on, and the top-level names. Splink 5 + DuckDB is the oracle."""

from __future__ import annotations

import copy
import importlib
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

pd = pytest.importorskip("pandas")

import gpulink as gl  # noqa: E402
from gpulink.blocking_analysis import (  # noqa: E402
    count_comparisons_from_blocking_rules,
    n_largest_blocks,
)
from gpulink.errors import InputError, SettingsError  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"


def halves(df):
    return df.iloc[:500].reset_index(drop=True), df.iloc[500:].reset_index(drop=True)


def model(m, link_type="dedupe_only", rules=None):
    """Settings with fixed m, u and λ (built by library ``m``: splink or gpulink)."""
    cl = importlib.import_module(f"{m.__name__}.comparison_library")
    settings = m.SettingsCreator(
        link_type=link_type,
        comparisons=[
            cl.ExactMatch("first_name").configure(
                m_probabilities=[0.9, 0.1], u_probabilities=[0.01, 0.99]
            ),
            cl.LevenshteinAtThresholds("surname", [2]).configure(
                m_probabilities=[0.8, 0.15, 0.05], u_probabilities=[0.005, 0.02, 0.975]
            ),
            cl.ExactMatch("dob").configure(
                m_probabilities=[0.85, 0.15], u_probabilities=[0.002, 0.998]
            ),
            cl.ExactMatch("city").configure(
                term_frequency_adjustments=True,
                m_probabilities=[0.7, 0.3],
                u_probabilities=[0.1, 0.9],
            ),
        ],
        blocking_rules_to_generate_predictions=rules
        or [m.block_on("first_name"), m.block_on("dob")],
        probability_two_random_records_match=0.002,
        retain_matching_columns=False,
    )
    return settings


def gp_frame(linker) -> pd.DataFrame:
    return linker.inference.predict().to_pandas()


def keyed(df: pd.DataFrame) -> dict:
    """{(source_l, uid_l, source_r, uid_r): (match_key, match_weight)}."""
    sl = df["source_dataset_l"] if "source_dataset_l" in df else [None] * len(df)
    sr = df["source_dataset_r"] if "source_dataset_r" in df else [None] * len(df)
    out = {}
    for a, b, c, d, k, w in zip(
        sl, df["unique_id_l"], sr, df["unique_id_r"], df["match_key"], df["match_weight"]
    ):
        out[(a, str(b), c, str(d))] = (str(k), float(w))
    assert len(out) == len(df)
    return out


def assert_same(expected: pd.DataFrame, got: pd.DataFrame):
    e, g = keyed(expected), keyed(got)
    assert len(e) > 50
    assert e.keys() == g.keys()
    assert all(e[k][0] == g[k][0] for k in e), "match_key differs"
    we = np.array([e[k][1] for k in e])
    wg = np.array([g[k][1] for k in e])
    np.testing.assert_allclose(wg, we, rtol=0, atol=1e-9)


# -- 1. inputs: Splink's registered tables, DuckDB relations --------------------------------


def test_linker_reads_splink_registered_table_as_it_reads_pandas(fake_1000):
    splink = pytest.importorskip("splink")
    settings = model(gl)
    from_pandas = gl.Linker(fake_1000, settings, backend="cpu")
    sdf = splink.DuckDBAPI().register(fake_1000)
    from_splink = gl.Linker(sdf, settings, backend="cpu")
    assert from_splink._data.to_pylist() == from_pandas._data.to_pylist()
    expected = gp_frame(from_pandas)
    assert_same(expected, gp_frame(from_splink))
    # Splink 4's pattern too: the db_api in third position is ignored
    assert_same(expected, gp_frame(gl.Linker(sdf, settings, splink.DuckDBAPI())))


def test_linker_reads_duckdb_relation(fake_1000):
    duckdb = pytest.importorskip("duckdb")
    settings = model(gl)
    con = duckdb.connect()
    con.register("people", fake_1000)
    relation = con.sql("select * from people")
    expected = gp_frame(gl.Linker(fake_1000, settings, backend="cpu"))
    assert_same(expected, gp_frame(gl.Linker(relation, settings, backend="cpu")))


def test_splink_registered_frames_are_read_as_arrow_not_pandas(fake_1000):
    splink = pytest.importorskip("splink")
    sdf = splink.DuckDBAPI().register(fake_1000)
    calls = []
    original = type(sdf).as_pandas_dataframe

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    type(sdf).as_pandas_dataframe = spy
    try:
        gl.Linker(sdf, model(gl), backend="cpu")
    finally:
        type(sdf).as_pandas_dataframe = original
    assert not calls


@pytest.mark.parametrize("link_type", ["link_only", "link_and_dedupe"])
def test_link_jobs_take_source_dataset_names_from_register(fake_1000, link_type):
    """Splink's source_dataset is each table's dataset_display_name; gpulink's must be too,
    whoever registered the tables, and whatever their position in the list."""
    splink = pytest.importorskip("splink")
    a, b = halves(fake_1000)
    settings = model(splink, link_type)

    def splink_tables(api, named):
        if named:
            return [
                api.register(a, dataset_display_name="zeta"),
                api.register(b, dataset_display_name="alpha"),
            ]
        api.register(fake_1000.iloc[:3])  # takes __splink__input_table_0
        return [api.register(a), api.register(b)]  # _1 and _2, not _0 and _1

    for named in (True, False):
        sp = splink.Linker(
            splink_tables(splink.DuckDBAPI(), named),
            copy.deepcopy(settings),
            log_level=logging.ERROR,
        )
        expected = sp.inference.predict().as_pandas_dataframe()
        names = set(expected["source_dataset_l"]) | set(expected["source_dataset_r"])
        assert names == (
            {"zeta", "alpha"} if named else {"__splink__input_table_1", "__splink__input_table_2"}
        )
        for api in (splink.DuckDBAPI(), gl.DuckDBAPI()):
            got = gl.Linker(splink_tables(api, named), copy.deepcopy(settings), backend="cpu")
            assert_same(expected, gp_frame(got))


def test_blocking_analysis_reads_registered_tables(fake_1000):
    splink = pytest.importorskip("splink")
    from splink.blocking_analysis import count_comparisons_from_blocking_rules as theirs

    rules = [gl.block_on("first_name"), gl.block_on("substr(surname, 1, 2)", "dob")]
    a, b = halves(fake_1000)
    for link_type in ("dedupe_only", "link_only"):
        db = splink.DuckDBAPI()
        inputs = (
            db.register(fake_1000)
            if link_type == "dedupe_only"
            else [db.register(a), db.register(b)]
        )
        expected = theirs(
            inputs,
            blocking_rules=[
                splink.block_on("first_name"),
                splink.block_on("substr(surname, 1, 2)", "dob"),
            ],
            link_type=link_type,
            record_sample_proportion=1.0,
        )
        plain = fake_1000 if link_type == "dedupe_only" else [a, b]
        ours = count_comparisons_from_blocking_rules(
            plain, blocking_rules=rules, link_type=link_type
        )
        assert ours == expected
        assert (
            count_comparisons_from_blocking_rules(inputs, blocking_rules=rules, link_type=link_type)
            == expected
        )
        assert (
            count_comparisons_from_blocking_rules(
                splink_dataframe_or_dataframes=inputs, blocking_rules=rules, link_type=link_type
            )
            == expected
        )
        api = gl.DuckDBAPI()
        gl_inputs = (
            api.register(plain) if link_type == "dedupe_only" else [api.register(t) for t in plain]
        )
        assert (
            count_comparisons_from_blocking_rules(
                gl_inputs, blocking_rules=rules, link_type=link_type
            )
            == expected
        )
    largest = n_largest_blocks(
        splink.DuckDBAPI().register(fake_1000), blocking_rule=rules[0], link_type="dedupe_only"
    )
    assert largest.equals(
        n_largest_blocks(fake_1000, blocking_rule=rules[0], link_type="dedupe_only")
    )


def test_evaluation_and_clustering_read_splink_frames(fake_1000):
    splink = pytest.importorskip("splink")
    from gpulink.clustering import cluster_pairwise_predictions_at_threshold
    from gpulink.evaluation import pairwise_accuracy

    linker = gl.Linker(fake_1000, model(gl), backend="cpu")
    pairs = linker.inference.predict().to_pandas()
    db = splink.DuckDBAPI()
    truth = db.register(fake_1000[["unique_id", "cluster"]])
    assert pairwise_accuracy(pairs, truth, threshold=0.5) == pairwise_accuracy(
        pairs, fake_1000, threshold=0.5
    )
    nodes = fake_1000[["unique_id"]]
    expected = cluster_pairwise_predictions_at_threshold(
        nodes, pairs, node_id_column_name="unique_id", threshold_match_probability=0.9
    )
    got = cluster_pairwise_predictions_at_threshold(
        db.register(nodes), db.register(pairs), db, "unique_id", threshold_match_probability=0.9
    )
    assert got.to_arrow().equals(expected.to_arrow())


def test_gpulink_does_not_import_splink_or_duckdb():
    code = textwrap.dedent(
        """
        import sys
        import pandas as pd
        import gpulink as gl
        api = gl.DuckDBAPI(connection=":memory:")
        df = pd.DataFrame({"unique_id": [1, 2, 3], "name": ["a", "a", "b"]})
        gl.Linker([api.register(df), api.register(df)], gl.SettingsCreator(link_type="link_only",
            comparisons=[gl.comparison_library.ExactMatch("name")],
            blocking_rules_to_generate_predictions=[gl.block_on("name")]), backend="cpu")
        gl.block_on(gl.ColumnExpression("name").lower())
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("splink", "duckdb")))
        """
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


# -- 2. gpulink.DuckDBAPI ---------------------------------------------------------------------


def test_duckdbapi_names_tables_as_splink():
    splink = pytest.importorskip("splink")
    df = pd.DataFrame({"unique_id": [1, 2]})
    calls = [
        {},
        {"dataset_display_name": "crm"},
        {},
        {"table_name": "t"},
        {"table_name": "u", "dataset_display_name": "v"},
    ]
    theirs, ours = splink.DuckDBAPI(), gl.DuckDBAPI()
    for kwargs in calls:
        s, g = theirs.register(df, **kwargs), ours.register(df, **kwargs)
        assert (g.templated_name, g.dataset_display_name) == (
            s.templated_name,
            s.dataset_display_name,
        )
    with pytest.raises(InputError, match="already been registered with table_name='t'"):
        ours.register(df, table_name="t")
    assert ours.register(df).as_pandas_dataframe().equals(df)


def test_duckdbapi_accepts_splinks_constructor_arguments(tmp_path):
    gl.DuckDBAPI()
    gl.DuckDBAPI(":memory:", "my_schema")
    gl.DuckDBAPI(
        connection=str(tmp_path / "x.duckdb"),
        materialisation="parquet",
        materialisation_dir=str(tmp_path),
    )
    with pytest.raises(InputError, match="cannot read the table registered as"):
        gl.DuckDBAPI().register(42)


def test_registered_table_reads_paths_and_arrow(tmp_path):
    t = pa.table({"unique_id": [3, 1, 2], "x": ["a", None, "b"]})
    path = tmp_path / "t.csv"
    t.to_pandas().to_csv(path, index=False)
    api = gl.DuckDBAPI()
    for source in (t, t.to_pandas(), str(path)):
        reg = api.register(source)
        assert reg.as_pyarrow_table().column("x").to_pylist() == ["a", None, "b"]
        assert len(reg) == 3 and reg.columns == ["unique_id", "x"]


# -- 3. ColumnExpression in block_on ---------------------------------------------------------

CE_RULES = [
    lambda m, CE: m.block_on(CE("surname").lower().substr(1, 3), "dob"),
    lambda m, CE: m.block_on(CE("email").regex_extract("^[^@]+")),
    lambda m, CE: m.block_on(CE("dob").try_parse_date(), CE("first_name").nullif("")),
    lambda m, CE: m.block_on(CE("city").cast_to_string().lower(), CE("substr(dob, 1, 4)")),
]


def test_block_on_column_expressions_equals_splink(fake_1000):
    splink = pytest.importorskip("splink")
    ours = [make(gl, gl.ColumnExpression) for make in CE_RULES]
    theirs = [make(splink, splink.ColumnExpression) for make in CE_RULES]
    for o, t in zip(ours, theirs):
        assert o.sql == t.get_blocking_rule("duckdb").blocking_rule_sql
    settings = model(splink, rules=theirs)
    sp = splink.Linker(
        splink.DuckDBAPI().register(fake_1000), copy.deepcopy(settings), log_level=logging.ERROR
    )
    expected = sp.inference.predict().as_pandas_dataframe()
    assert set(expected["match_key"].astype(str)) == {"0", "1", "2", "3"}
    got = gp_frame(gl.Linker(fake_1000, model(gl, rules=ours), backend="cpu"))
    assert_same(expected, got)
    from splink.blocking_analysis import count_comparisons_from_blocking_rules as theirs_fn

    counts = theirs_fn(
        splink.DuckDBAPI().register(fake_1000), blocking_rules=theirs, link_type="dedupe_only",
        record_sample_proportion=1.0,
    )  # fmt: skip
    assert (
        count_comparisons_from_blocking_rules(
            fake_1000, blocking_rules=ours, link_type="dedupe_only"
        )
        == counts
    )


def test_block_on_column_expression_model_json_round_trip(fake_1000, tmp_path):
    rule = gl.block_on(gl.ColumnExpression("surname").lower().substr(1, 3), "dob")
    linker = gl.Linker(fake_1000, model(gl, rules=[rule]), backend="cpu")
    linker.misc.save_model_to_json(str(tmp_path / "m.json"))
    again = gl.Linker(fake_1000, str(tmp_path / "m.json"), backend="cpu")
    assert_same(gp_frame(linker), gp_frame(again))
    assert (
        again.settings.to_splink_dict()["blocking_rules_to_generate_predictions"][0][
            "blocking_rule"
        ]
        == rule.sql
    )


def test_block_on_rejects_other_objects_naming_the_fix():
    splink = pytest.importorskip("splink")
    with pytest.raises(SettingsError, match="use gpulink.ColumnExpression"):
        gl.block_on(splink.ColumnExpression("surname"))
    with pytest.raises(SettingsError, match="must be a column name"):
        gl.block_on(3)


# -- 4. the tutorial, with the imports swapped ------------------------------------------------

TUTORIAL = """
db_api = DuckDBAPI()
df_sdf = db_api.register(df)
settings = SettingsCreator(
    link_type="dedupe_only",
    comparisons=[
        cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
        cl.JaroAtThresholds("surname"),
        cl.DateOfBirthComparison("dob", input_is_string=True),
        cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        cl.EmailComparison("email"),
    ],
    blocking_rules_to_generate_predictions=[
        block_on("first_name", "dob"),
        block_on(ColumnExpression("surname").lower().substr(1, 3)),
    ],
    retain_intermediate_calculation_columns=True,
)
linker = Linker(df_sdf, settings)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1, min_count_per_level=None)
linker.training.estimate_probability_two_random_records_match(
    [block_on("first_name", "surname")], recall=0.7
)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
df_predict = linker.inference.predict(threshold_match_probability=0.2)
result = df_predict.as_pandas_dataframe()
"""


def test_splink_tutorial_runs_with_gpulink_imports(fake_1000):
    pytest.importorskip("splink")
    results = {}
    for lib in ("splink", "gpulink"):
        ns = {"df": fake_1000}
        exec(f"from {lib} import ColumnExpression, DuckDBAPI, Linker, SettingsCreator, block_on\n"
             f"import {lib}.comparison_library as cl", ns)  # fmt: skip
        logging.getLogger("splink").setLevel(logging.ERROR)
        exec(TUTORIAL, ns)
        results[lib] = ns["result"]
    s, g = keyed(results["splink"]), keyed(results["gpulink"])
    # u from every pair, λ from deterministic rules and EM from the same start: Splink's model
    assert len(s) > 500 and s.keys() == g.keys()
    assert all(s[k][0] == g[k][0] for k in s)
    np.testing.assert_allclose([g[k][1] for k in s], [s[k][1] for k in s], rtol=0, atol=1e-6)


def test_top_level_names_match_splinks():
    splink = pytest.importorskip("splink")
    missing = [n for n in splink.__all__ if not hasattr(gl, n)]
    assert sorted(missing) == ["SparkAPI", "splink_datasets"]
    differences = README.read_text()
    for name in missing:
        assert f"`{name}`" in differences, f"README does not say that gpulink has no {name}"
