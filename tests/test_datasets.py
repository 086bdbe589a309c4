"""gpulink.datasets: reproducibility, partition independence, statistics, realism."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from rapidfuzz.distance import OSA

from gpulink.datasets import (
    ClusterSizes,
    ErrorFlag,
    ErrorRates,
    main_synth,
    parse_count,
    synthetic_people,
    write_synthetic_people,
)
from gpulink.errors import InputError

STRING_COLUMNS = ["first_name", "surname", "dob", "postcode", "city", "email", "gender"]


@pytest.fixture(scope="module")
def big():
    return synthetic_people(200_000, seed=3, error_flags=True)


def test_schema_and_types():
    t = synthetic_people(1000, seed=0)
    assert t.column_names == ["unique_id", "cluster", *STRING_COLUMNS]
    assert t.schema.field("unique_id").type == pa.int64()
    assert t.schema.field("cluster").type == pa.int64()
    for c in STRING_COLUMNS:
        assert t.schema.field(c).type == pa.string()
    assert t["unique_id"].to_pylist() == list(range(1000))
    assert synthetic_people(0, seed=0).num_rows == 0
    assert "error_flags" in synthetic_people(10, seed=0, error_flags=True).column_names


def test_reproducible_by_seed_and_thread_count():
    a = synthetic_people(40_000, seed=5, threads=1)
    assert a.equals(synthetic_people(40_000, seed=5, threads=2))
    assert not a.equals(synthetic_people(40_000, seed=6))


@pytest.mark.parametrize("partitions", [1, 2, 5])
def test_writer_is_independent_of_partitions(tmp_path, partitions):
    n = 40_000  # about three generation blocks, so 5 partitions leaves some empty
    expected = synthetic_people(n, seed=9, error_flags=True)
    path = write_synthetic_people(
        tmp_path / "people", n, partitions=partitions, seed=9, error_flags=True, progress=False
    )
    files = sorted(path.glob("part-*.parquet"))
    assert len(files) == partitions
    got = pa.concat_tables([pq.read_table(f) for f in files]).combine_chunks()
    assert got.equals(expected.combine_chunks())


def test_writer_refuses_to_overwrite(tmp_path):
    write_synthetic_people(tmp_path / "p", 100, partitions=1, seed=0, progress=False)
    with pytest.raises(InputError, match="already exists"):
        write_synthetic_people(tmp_path / "p", 100, partitions=1, seed=0, progress=False)


def test_every_column_is_non_trivial(big):
    n = big.num_rows
    for c in ["first_name", "surname", "dob", "postcode", "city", "email"]:
        col = big[c]
        assert 0 < col.null_count < 0.3 * n, c
        assert pc.count_distinct(col).as_py() > 30, c
    assert pc.count_distinct(big["gender"]).as_py() == 2
    # Dates parse, and are plausible birth dates.
    dates = pc.strptime(big["dob"].drop_null(), "%Y-%m-%d", "s")
    years = pc.year(dates).to_numpy()
    assert years.min() >= 1928 and years.max() <= 2010
    # UK postcodes ("SW12 3AB"), or their outward code when partial; typos may break the form.
    well_formed = pc.match_substring_regex(
        big["postcode"].drop_null(), r"^[A-Z]{1,2}[0-9]{1,2}( [0-9][A-Z]{2})?$"
    )
    assert pc.mean(well_formed.cast(pa.float64())).as_py() > 0.97


def test_names_follow_faker_frequencies(big):
    from faker.providers.person.en_US import Provider

    counts = pc.value_counts(big["surname"].drop_null())
    top = {v["values"]: v["counts"] for v in counts.to_pylist()}
    total = sum(top.values())
    # Smith is the most common US surname in Faker's weights (about 2.2% of the head list,
    # 90% of draws come from the head).
    assert max(top, key=top.get) == "Smith"
    expected = Provider.last_names["Smith"] / sum(Provider.last_names.values()) * 0.9
    assert abs(top["Smith"] / total - expected) < 0.25 * expected


def test_cluster_sizes_follow_the_requested_law():
    sizes = ClusterSizes(duplicate_rate=0.4, zipf_exponent=1.8, max_cluster_size=25)
    t = synthetic_people(300_000, seed=1, duplicates=sizes, errors=0.0)
    per_cluster = pc.value_counts(t["cluster"]).field("counts").to_numpy()
    per_cluster = per_cluster[:-1] if per_cluster.size else per_cluster
    observed = np.bincount(per_cluster, minlength=26)[1:] / per_cluster.size
    pmf = sizes.pmf()
    assert per_cluster.max() <= 25
    assert abs(observed[0] - 0.6) < 0.01  # singletons
    np.testing.assert_allclose(observed[:5], pmf[:5], atol=0.01)
    assert observed[10:].sum() > 0  # a heavy tail
    # duplicates=0: everyone has one record.
    t0 = synthetic_people(5000, seed=1, duplicates=0.0)
    assert pc.count_distinct(t0["cluster"]).as_py() == 5000


def test_error_rates_match_the_requested_rates(big):
    flags = big["error_flags"].to_numpy()
    n = big.num_rows
    n_dup = n - pc.count_distinct(big["cluster"]).as_py()
    rates = ErrorRates()
    unconditional = {
        ErrorFlag.TYPO_SURNAME: rates.typo_surname,
        ErrorFlag.NAME_SWAP: rates.name_swap,
        ErrorFlag.DOB_YEAR_OFF: rates.dob_year_off,
        ErrorFlag.STALE_ADDRESS: rates.stale_address,
        ErrorFlag.EMAIL_VARIANT: rates.email_variant,
        ErrorFlag.POSTCODE_PARTIAL: rates.postcode_partial,
        ErrorFlag.CITY_TYPO: rates.city_typo,
    }
    for bit, rate in unconditional.items():
        got = ((flags & int(bit)) != 0).sum() / n_dup
        assert abs(got - rate) < 4 * np.sqrt(rate * (1 - rate) / n_dup) + 1e-3, bit
    for bit in (ErrorFlag.MISSING_SURNAME, ErrorFlag.MISSING_DOB):
        got = ((flags & int(bit)) != 0).sum() / n
        assert abs(got - rates.missing) < 0.003, bit
    # Errors that need an eligible value happen, but no more often than asked.
    for bit, rate in {
        ErrorFlag.NICKNAME: rates.nickname,
        ErrorFlag.DOB_DAY_MONTH_SWAP: rates.dob_day_month_swap,
    }.items():
        got = ((flags & int(bit)) != 0).sum() / n_dup
        assert 0.1 * rate < got < rate + 0.005, bit
    # Flagged fields really are missing.
    missing = (flags & int(ErrorFlag.MISSING_DOB)) != 0
    assert big["dob"].is_null().to_numpy(zero_copy_only=False)[missing].all()


def test_scaled_and_zero_errors():
    clean = synthetic_people(20_000, seed=2, errors=0.0, error_flags=True)
    assert (clean["error_flags"].to_numpy() == 0).all()
    # Without errors every record of a person is identical but for its ids.
    df = clean.to_pandas()
    assert (
        (
            df.groupby("cluster")[["first_name", "surname", "dob", "postcode", "email"]].nunique(
                dropna=False
            )
            <= 1
        )
        .all()
        .all()
    )
    noisy = synthetic_people(20_000, seed=2, errors=2.0, error_flags=True)
    assert (noisy["error_flags"].to_numpy() != 0).mean() > (
        synthetic_people(20_000, seed=2, error_flags=True)["error_flags"].to_numpy() != 0
    ).mean()


def _clean_value(df, cluster, column, flag_mask):
    others = df[(df.cluster == cluster) & ((df.error_flags & flag_mask) == 0)][column].dropna()
    return others.mode().iloc[0] if len(others) else None


def test_typos_are_single_edits_and_keep_case(big):
    df = big.to_pandas()
    name_bits = int(ErrorFlag.TYPO_SURNAME | ErrorFlag.NAME_SWAP | ErrorFlag.MISSING_SURNAME)
    typo = df[(df.error_flags & name_bits) == int(ErrorFlag.TYPO_SURNAME)].head(300)
    checked = 0
    for row in typo.itertuples():
        clean = _clean_value(df, row.cluster, "surname", name_bits)
        if clean is None:
            continue
        checked += 1
        # One edit; capitalisation is re-applied to the result, so compare ignoring case.
        assert OSA.distance(row.surname.lower(), clean.lower()) == 1, (row.surname, clean)
        if len(row.surname) > 1:
            assert row.surname[0].isupper(), row.surname
    assert checked > 100


def test_other_errors_look_right(big):
    df = big.to_pandas()
    flags = df.error_flags
    swap = df[
        (
            flags
            & int(
                ErrorFlag.NAME_SWAP
                | ErrorFlag.MISSING_SURNAME
                | ErrorFlag.MISSING_FIRST_NAME
                | ErrorFlag.TYPO_SURNAME
                | ErrorFlag.TYPO_FIRST_NAME
                | ErrorFlag.NICKNAME
                | ErrorFlag.INITIAL
            )
        )
        == int(ErrorFlag.NAME_SWAP)
    ].head(50)
    for row in swap.itertuples():
        clean = _clean_value(
            df,
            row.cluster,
            "first_name",
            int(
                ErrorFlag.NAME_SWAP
                | ErrorFlag.TYPO_FIRST_NAME
                | ErrorFlag.NICKNAME
                | ErrorFlag.INITIAL
                | ErrorFlag.MISSING_FIRST_NAME
            ),
        )
        if clean is not None:
            assert row.surname == clean
    dm = df[
        (flags & int(ErrorFlag.DOB_DAY_MONTH_SWAP | ErrorFlag.DOB_YEAR_OFF | ErrorFlag.MISSING_DOB))
        == int(ErrorFlag.DOB_DAY_MONTH_SWAP)
    ].head(50)
    for row in dm.itertuples():
        clean = _clean_value(
            df,
            row.cluster,
            "dob",
            int(ErrorFlag.DOB_DAY_MONTH_SWAP | ErrorFlag.DOB_YEAR_OFF | ErrorFlag.MISSING_DOB),
        )
        if clean is not None:
            y, m, d = clean.split("-")
            assert row.dob == f"{y}-{d}-{m}"
    part = df[
        (flags & int(ErrorFlag.POSTCODE_PARTIAL | ErrorFlag.MISSING_POSTCODE))
        == int(ErrorFlag.POSTCODE_PARTIAL)
    ]
    assert (~part.postcode.str.contains(" ")).all()
    initial = df[
        (flags & int(ErrorFlag.INITIAL | ErrorFlag.NAME_SWAP | ErrorFlag.MISSING_FIRST_NAME))
        == int(ErrorFlag.INITIAL)
    ]
    assert (initial.first_name.str.len() == 1).all()


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(InputError, match="seed"):
        synthetic_people(10, seed=-1)
    with pytest.raises(InputError, match="n_records"):
        synthetic_people(-5, seed=0)
    with pytest.raises(InputError, match="unknown keys"):
        synthetic_people(10, seed=0, errors={"typo": 0.1})
    with pytest.raises(InputError, match="probability"):
        synthetic_people(10, seed=0, duplicates=1.5)
    with pytest.raises(InputError, match="partitions"):
        write_synthetic_people(tmp_path / "x", 10, partitions=0, seed=0)


def test_cli_entry(tmp_path):
    assert parse_count("2.5k") == 2500
    assert (
        main_synth(["--rows", "3k", "--out", str(tmp_path / "d"), "--partitions", "2", "--quiet"])
        == 0
    )
    assert pq.read_table(tmp_path / "d").num_rows == 3000
    assert main_synth(["--rows", "500", "--out", str(tmp_path / "f.parquet"), "--quiet"]) == 0
    assert pq.read_table(tmp_path / "f.parquet").equals(
        synthetic_people(500, seed=0).combine_chunks()
    )


def _bench_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("gpulink_bench_run", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_splink_reaches_a_realistic_f1(tmp_path):
    """Neither trivial nor hopeless: Splink (DuckDB) on 100k records, the benchmark's model."""
    pytest.importorskip("splink")
    bench = _bench_module()
    path = tmp_path / "people.parquet"
    pq.write_table(synthetic_people(100_000, seed=42), path)
    record = bench.worker("splink-duckdb", str(path), seed=42, max_pairs=2e6)
    f1 = record["accuracy"]["pairwise"]["0.9"]["f1"]
    assert 0.80 <= f1 <= 0.99, record["accuracy"]
    assert record["accuracy"]["b_cubed_at_threshold"]["f1"] > 0.8
