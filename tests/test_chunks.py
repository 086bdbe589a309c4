"""predict_chunk, compute_blocked_pairs_for_predict(_chunk), register_blocked_pairs_for_predict
and invalidate_cache.

Expected values come from gpulink's own predict() (the union of the chunks, registered pairs)
and from Splink 5 + DuckDB (DuckDB's hash(), Splink's chunks and blocked pairs).
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pyarrow as pa
import pytest

import gpulink as gl
import gpulink.comparison_library as cl
from gpulink.chunking import duckdb_hash
from gpulink.datasets import synthetic_people
from gpulink.linker import PredictionResult

pd = pytest.importorskip("pandas")

KEYS = ["unique_id_l", "unique_id_r"]
LINK_KEYS = ["source_dataset_l", "unique_id_l", "source_dataset_r", "unique_id_r"]


def _settings(link_type="dedupe_only", **kwargs):
    return gl.SettingsCreator(
        link_type,
        [
            cl.JaroWinklerAtThresholds("first_name"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.ExactMatch("dob"),
        ],
        blocking_rules_to_generate_predictions=[gl.block_on("surname"), gl.block_on("dob")],
        **kwargs,
    )


def _sorted(df, keys):
    return df.sort_values(keys).reset_index(drop=True)


def _halves(df):
    a, b = df.iloc[::2].reset_index(drop=True), df.iloc[1::2].reset_index(drop=True)
    return [a, b]


@pytest.fixture(scope="module")
def people():
    return synthetic_people(1500, seed=5).to_pandas()


@pytest.fixture(scope="module")
def dedupe(people):
    linker = gl.Linker(people, _settings(retain_intermediate_calculation_columns=True), "cpu")
    return linker, linker.inference.predict().to_pandas()


# -- DuckDB's hash -----------------------------------------------------------------------------


def test_duckdb_hash_matches_duckdb_for_integer_and_string_ids():
    duckdb = pytest.importorskip("duckdb")
    rng = np.random.default_rng(1)
    ints = np.concatenate([rng.integers(-(2**63), 2**63 - 1, 500), np.arange(-40, 40)])
    strings = ["", "a", "abcdefgh", "abcdefghi", "0123456789abcdef", "é", "日本語テキスト😀"]
    strings += [f"ds-__-{v}" * (int(v) % 4) for v in ints]
    t = pa.table(
        {
            "i64": pa.array(ints, pa.int64()),
            "i32": pa.array((ints % 2**31).astype(np.int32) * np.where(ints % 2 == 0, 1, -1)),
            "i16": pa.array((ints % 2**15).astype(np.int16) * -1),
            "u32": pa.array((ints % 2**32).astype(np.uint32)),
        }
    )
    s = pa.table({"s": pa.array(strings)})
    con = duckdb.connect()
    got = con.sql("select hash(i64), hash(i32), hash(i16), hash(u32) from t").fetchall()
    for k, name in enumerate(t.column_names):
        expected = np.array([row[k] for row in got], np.uint64)
        assert (duckdb_hash(t[name]) == expected).all(), name
    expected = np.array([row[0] for row in con.sql("select hash(s) from s").fetchall()], np.uint64)
    assert (duckdb_hash(s["s"]) == expected).all()


# -- predict_chunk -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_left, n_right", [(3, 2), (1, 4), (2, 2)])
def test_chunks_are_disjoint_and_their_union_is_predict(dedupe, n_left, n_right):
    linker, full = dedupe
    parts = [
        linker.inference.predict_chunk((i, n_left), (j, n_right)).to_pandas()
        for i in range(1, n_left + 1)
        for j in range(1, n_right + 1)
    ]
    assert all(len(p) for p in parts)
    union = pd.concat(parts)
    assert not union.duplicated(KEYS).any()
    pd.testing.assert_frame_equal(_sorted(union, KEYS), _sorted(full, KEYS), check_exact=True)


def test_link_job_chunks_union_is_predict(people):
    settings = _settings("link_and_dedupe")
    linker = gl.Linker(_halves(people), settings, "cpu", input_table_aliases=["a", "b"])
    full = linker.inference.predict(threshold_match_weight=-5).to_pandas()
    parts = [
        linker.inference.predict_chunk((i, 2), (j, 3), threshold_match_weight=-5).to_pandas()
        for i in (1, 2)
        for j in (1, 2, 3)
    ]
    union = pd.concat(parts)
    assert not union.duplicated(LINK_KEYS).any()
    pd.testing.assert_frame_equal(
        _sorted(union, LINK_KEYS), _sorted(full, LINK_KEYS), check_exact=True
    )


def test_link_only_chunks_union_is_predict(people):
    linker = gl.Linker(_halves(people), _settings("link_only"), "cpu")
    full = linker.inference.predict().to_pandas()
    parts = [
        linker.inference.predict_chunk((i, 3), (j, 2)).to_pandas()
        for i in (1, 2, 3)
        for j in (1, 2)
    ]
    union = pd.concat(parts)
    assert (union["source_dataset_l"] != union["source_dataset_r"]).all()
    pd.testing.assert_frame_equal(
        _sorted(union, LINK_KEYS), _sorted(full, LINK_KEYS), check_exact=True
    )


def test_a_chunk_holds_the_pairs_whose_records_are_in_its_chunks(dedupe):
    linker, full = dedupe
    ids = pa.array(full["unique_id_l"].to_numpy())
    left = (duckdb_hash(ids) % np.uint64(3)).astype(int) + 1
    right = (duckdb_hash(pa.array(full["unique_id_r"].to_numpy())) % np.uint64(2)).astype(int) + 1
    expected = full[(left == 2) & (right == 1)]
    got = linker.inference.predict_chunk((2, 3), (1, 2)).to_pandas()
    pd.testing.assert_frame_equal(_sorted(got, KEYS), _sorted(expected, KEYS), check_exact=True)
    # a chunk walks only its own pairs, not all of predict's
    assert linker.last_predict_stats["candidate_pairs"] < len(full) / 2


def test_whole_chunks_and_thresholds_are_predicts(dedupe):
    linker, full = dedupe
    for chunks in [(None, None), ((1, 1), (1, 1)), ((1, 1), None)]:
        got = linker.inference.predict_chunk(*chunks).to_pandas()
        pd.testing.assert_frame_equal(_sorted(got, KEYS), _sorted(full, KEYS), check_exact=True)
    kept = linker.inference.predict_chunk((1, 2), None, threshold_match_probability=0.5)
    assert (kept.to_pandas()["match_probability"] >= 0.5).all()


@pytest.mark.parametrize(
    "left, right, name",
    [
        ((0, 3), None, "left_chunk"),
        ((4, 3), None, "left_chunk"),
        (None, (1, 0), "right_chunk"),
        ((1, 2, 3), None, "left_chunk"),
        (None, 2, "right_chunk"),
        (("1", "2"), None, "left_chunk"),
        ((1.5, 2), None, "left_chunk"),
    ],
)
def test_bad_chunks_raise_naming_the_argument_and_the_fix(dedupe, left, right, name):
    linker, _ = dedupe
    with pytest.raises(gl.SettingsError, match=rf"{name}=.*\(chunk_number, total_chunks\)"):
        linker.inference.predict_chunk(left, right)
    with pytest.raises(gl.SettingsError, match=name):
        linker.inference.compute_blocked_pairs_for_predict_chunk(left, right)


def test_predict_accepts_splinks_chunk_counts(dedupe):
    linker, full = dedupe
    got = linker.inference.predict(num_chunks_left=2, num_chunks_right=3).to_pandas()
    pd.testing.assert_frame_equal(_sorted(got, KEYS), _sorted(full, KEYS), check_exact=True)
    with pytest.raises(gl.SettingsError, match="num_chunks_left must be a positive integer"):
        linker.inference.predict(num_chunks_left=0)
    with pytest.raises(gl.SettingsError, match="warning_mode"):
        linker.inference.predict_chunk(warning_mode="loud")


# -- blocked pairs ---------------------------------------------------------------------------


def test_blocked_pairs_are_predicts_pairs_with_their_match_key(dedupe):
    linker, full = dedupe
    pairs = linker.inference.compute_blocked_pairs_for_predict()
    assert isinstance(pairs, PredictionResult)
    got = pairs.to_pandas()
    assert list(got.columns) == ["match_key", "join_key_l", "join_key_r", *KEYS]
    assert (got["join_key_l"] == got["unique_id_l"]).all()
    expected = full[[*KEYS, "match_key"]]
    pd.testing.assert_frame_equal(
        _sorted(got[[*KEYS, "match_key"]], KEYS), _sorted(expected, KEYS), check_exact=True
    )
    chunk = linker.inference.compute_blocked_pairs_for_predict_chunk((2, 2), (1, 3)).to_pandas()
    scored = linker.inference.predict_chunk((2, 2), (1, 3)).to_pandas()
    assert sorted(map(tuple, chunk[KEYS].values)) == sorted(map(tuple, scored[KEYS].values))


def test_registered_pairs_are_scored_exactly_as_predict(people, dedupe):
    _, full = dedupe
    linker = gl.Linker(people, _settings(retain_intermediate_calculation_columns=True), "cpu")
    pairs = linker.inference.compute_blocked_pairs_for_predict()
    linker.table_management.register_blocked_pairs_for_predict(pairs.to_pandas())
    got = linker.inference.predict().to_pandas()
    pd.testing.assert_frame_equal(_sorted(got, KEYS), _sorted(full, KEYS), check_exact=True)
    kept = linker.inference.predict(threshold_match_probability=0.9).to_pandas()
    expected = full[full["match_probability"] >= 0.9]
    pd.testing.assert_frame_equal(_sorted(kept, KEYS), _sorted(expected, KEYS), check_exact=True)
    # clustering reads the registered predictions' record indices
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(kept_result := (
        linker.inference.predict()), 0.9)  # fmt: skip
    assert len(clusters) == len(people) and len(kept_result) == len(full)


def test_registered_subset_and_other_pairs_are_scored_as_given(people, dedupe):
    linker, full = dedupe
    other = gl.Linker(people, _settings(retain_intermediate_calculation_columns=True), "cpu")
    subset = full.iloc[::7][[*KEYS, "match_key"]]
    # predict's id columns work in place of join keys; the pair order is the input's
    other.table_management.register_blocked_pairs_for_predict(subset.iloc[::-1])
    got = other.inference.predict().to_pandas()
    pd.testing.assert_frame_equal(
        _sorted(got, KEYS), _sorted(full.iloc[::7], KEYS), check_exact=True
    )
    # a pair no rule produces is scored too, with its registered match key
    a, b = sorted(people["unique_id"].iloc[[0, 1]])
    extra = pd.DataFrame({"match_key": ["7"], "join_key_l": [a], "join_key_r": [b]})
    other.table_management.register_blocked_pairs_for_predict(extra)
    one = other.inference.predict().to_pandas()
    assert one[KEYS].values.tolist() == [[a, b]] and one["match_key"].tolist() == ["7"]
    expected = other.inference.score_pairs(
        people[people["unique_id"] == a], people[people["unique_id"] == b]
    ).to_pandas()
    assert one["match_weight"][0] == pytest.approx(expected["match_weight"][0], abs=1e-12)


def test_registered_pairs_refuse_chunks_with_splinks_reason(people):
    linker = gl.Linker(people, _settings(), "cpu")
    pairs = linker.inference.compute_blocked_pairs_for_predict_chunk((1, 2), (2, 2))
    linker.table_management.register_blocked_pairs_for_predict(pairs)
    with pytest.raises(gl.SettingsError, match="Blocked pairs have been manually registered"):
        linker.inference.predict_chunk((1, 2), (1, 2))
    with pytest.raises(gl.SettingsError, match="cannot own chunking"):
        linker.inference.predict(num_chunks_left=2, num_chunks_right=2)
    assert len(linker.inference.predict()) == len(pairs)


@pytest.mark.parametrize(
    "table, match",
    [
        ({"join_key_l": [1], "join_key_r": [2]}, "no match_key column"),
        ({"match_key": ["0"], "join_key_l": [1]}, "no join_key_r column"),
        ({"match_key": ["0"], "join_key_l": [1], "join_key_r": [-99]}, "name no record.*-99"),
        ({"match_key": [None], "join_key_l": [1], "join_key_r": [2]}, "match_key has 1 nulls"),
    ],
)
def test_bad_blocked_pairs_raise_and_change_nothing(people, table, match):
    linker = gl.Linker(people, _settings(), "cpu")
    n = len(linker.inference.predict())
    ids = sorted(people["unique_id"])
    table = {k: [ids[v] if k.startswith("join") and v in (1, 2) else v for v in vs]
             for k, vs in table.items()}  # fmt: skip
    with pytest.raises(gl.InputError, match=match):
        linker.table_management.register_blocked_pairs_for_predict(pa.table(table))
    assert len(linker.inference.predict()) == n
    linker.inference.predict_chunk((1, 2))  # nothing was registered


def test_invalidate_cache_drops_registered_pairs_and_encodings(people, dedupe):
    _, full = dedupe
    linker = gl.Linker(people, _settings(retain_intermediate_calculation_columns=True), "cpu")
    pairs = linker.inference.compute_blocked_pairs_for_predict_chunk((1, 3), (1, 3))
    linker.table_management.register_blocked_pairs_for_predict(pairs)
    assert len(linker.inference.predict()) == len(pairs) < len(full)
    table = linker._record_table()
    linker.table_management.invalidate_cache()
    assert "_packed_cache" not in linker.__dict__
    got = linker.inference.predict().to_pandas()
    assert linker._record_table() is not table
    pd.testing.assert_frame_equal(_sorted(got, KEYS), _sorted(full, KEYS), check_exact=True)


# -- Splink 5's chunks and blocked pairs -------------------------------------------------------


def _splink_linker(data, settings, names=None):
    splink = pytest.importorskip("splink")
    from splink import DuckDBAPI

    db = DuckDBAPI()
    if isinstance(data, list):
        tables = [db.register(df, dataset_display_name=n) for df, n in zip(data, names)]
    else:
        tables = db.register(data)
    return splink.Linker(tables, copy.deepcopy(settings), log_level=logging.ERROR)


def _splink_settings(link_type):
    pytest.importorskip("splink")
    import splink.comparison_library as scl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type,
        comparisons=[scl.ExactMatch("first_name"), scl.ExactMatch("dob")],
        blocking_rules_to_generate_predictions=[block_on("surname"), block_on("dob")],
    )


@pytest.mark.parametrize("link_type", ["dedupe_only", "link_and_dedupe", "link_only"])
@pytest.mark.parametrize("chunks", [(None, None), ((1, 3), (2, 2)), ((2, 2), None)])
def test_blocked_pairs_and_chunks_are_splinks(fake_1000, link_type, chunks):
    settings = _splink_settings(link_type)
    data, names = (
        (fake_1000, None) if link_type == "dedupe_only" else (_halves(fake_1000), ["a", "b"])
    )
    sl = _splink_linker(data, settings, names)
    gk = gl.Linker(data, copy.deepcopy(settings), "cpu", input_table_aliases=names)
    expected = sl.inference.compute_blocked_pairs_for_predict_chunk(*chunks).as_pandas_dataframe()
    got = gk.inference.compute_blocked_pairs_for_predict_chunk(*chunks).to_pandas()
    cols = ["match_key", "join_key_l", "join_key_r"]
    assert len(expected) > 0
    rows = lambda df: sorted(map(tuple, df[cols].astype(str).values))  # noqa: E731
    assert rows(got) == rows(expected)
    scored = sl.inference.predict_chunk(*chunks).as_pandas_dataframe()
    ours = gk.inference.predict_chunk(*chunks).to_pandas()
    keys = KEYS if link_type == "dedupe_only" else LINK_KEYS
    assert sorted(map(tuple, ours[keys].astype(str).values)) == sorted(
        map(tuple, scored[keys].astype(str).values)
    )
    if link_type == "dedupe_only":
        pairs = sl.inference.compute_blocked_pairs_for_predict_chunk(*chunks)
        sl.table_management.register_blocked_pairs_for_predict(pairs)
        gk.table_management.register_blocked_pairs_for_predict(pairs)  # Splink's own table
        s = sl.inference.predict().as_pandas_dataframe()
        g = gk.inference.predict().to_pandas()
        merged = s.merge(g, on=KEYS, suffixes=("_s", "_g"))
        assert len(merged) == len(s) == len(g)
        assert np.allclose(merged["match_weight_s"], merged["match_weight_g"], rtol=0, atol=1e-9)
        assert (merged["match_key_s"].astype(str) == merged["match_key_g"]).all()
