"""normalise_input and check_columns: every input kind, Splink's dataset names, every InputError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gpulink.errors import InputError
from gpulink.io import check_columns, default_dataset_name, normalise_input, to_arrow

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def frame():
    return pd.DataFrame(
        {"unique_id": [1, 2, 3], "name": ["a", None, np.nan], "x": [1.0, np.nan, 2.0]}
    )


def test_default_dataset_names_are_splinks():
    """Splink's db_api.register names unnamed tables __splink__input_table_<n>, from 0."""
    import duckdb
    from splink import DuckDBAPI

    api = DuckDBAPI(connection=duckdb.connect())
    names = [api.register(pd.DataFrame({"unique_id": [1]})).dataset_display_name for _ in range(2)]
    assert names == [default_dataset_name(0), default_dataset_name(1)]


def test_pandas_nan_and_none_become_null_empty_string_stays():
    df = frame()
    df.loc[0, "name"] = ""
    t = normalise_input(df)
    assert t.column("name").to_pylist() == ["", None, None]
    assert t.column("x").to_pylist() == [1.0, None, 2.0]


def test_all_input_kinds(tmp_path):
    pl = pytest.importorskip("polars")
    df = frame()
    arrow = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(arrow, tmp_path / "a.parquet")
    (tmp_path / "dir").mkdir()
    pq.write_table(arrow, tmp_path / "dir" / "part-0.parquet")
    df.to_csv(tmp_path / "a.csv", index=False)
    inputs = [
        df,
        arrow,
        arrow.to_reader(),
        arrow.to_batches()[0],
        pl.from_pandas(df),
        tmp_path / "a.parquet",
        str(tmp_path / "dir"),
        str(tmp_path / "a.csv"),
    ]
    for item in inputs:
        t = normalise_input(item)
        assert t.column("unique_id").to_pylist() == [1, 2, 3], type(item)
        assert t.column("name").to_pylist() == ["a", None, None], type(item)


def test_object_with_to_arrow():
    class Frame:
        def to_arrow(self):
            return pa.table({"unique_id": ["a"]})

    assert normalise_input(Frame()).num_rows == 1


def test_list_gets_source_dataset_and_concat_promotes_types():
    a = pd.DataFrame({"unique_id": [1, 2], "x": [1, 2], "s": ["p", "q"]})
    b = pa.table({"unique_id": [1], "x": [1.5], "s": pa.array(["r"]).dictionary_encode()})
    t = normalise_input([a, b], link_type="link_only")
    assert t.column_names[0] == "source_dataset"
    assert t.column("source_dataset").to_pylist() == [default_dataset_name(0)] * 2 + [
        default_dataset_name(1)
    ]
    assert t.column("x").to_pylist() == [1.0, 2.0, 1.5]
    assert t.column("s").to_pylist() == ["p", "q", "r"]
    named = normalise_input(
        {"left": a, "right": b}, link_type="link_and_dedupe", source_dataset_column="src"
    )
    assert named.column("src").to_pylist() == ["left", "left", "right"]


def test_existing_source_dataset_column():
    t = pa.table({"source_dataset": ["a", "b"], "unique_id": [1, 1]})
    assert normalise_input(t, link_type="link_only").num_rows == 2


def test_errors():
    df = frame()
    with pytest.raises(InputError, match=r"unique id column 'id' is missing"):
        normalise_input(df, unique_id_column="id")
    with pytest.raises(InputError, match=r"did you mean 'unique_id'"):
        normalise_input(df, unique_id_column="unique_ids")
    with pytest.raises(InputError, match=r"2 null values \(first at row 1\)"):
        normalise_input(pd.DataFrame({"unique_id": ["a", None, None]}))
    with pytest.raises(InputError, match=r"duplicated values \(first: 2, 2 times\)"):
        normalise_input(pd.DataFrame({"unique_id": [1, 2, 2]}))
    with pytest.raises(InputError, match=r"in source dataset 'b'.*within each source dataset"):
        normalise_input(
            pa.table({"source_dataset": ["a", "b", "b"], "unique_id": [1, 1, 1]}),
            link_type="link_and_dedupe",
        )
    with pytest.raises(InputError, match="needs at least two datasets"):
        normalise_input(df, link_type="link_only")
    with pytest.raises(InputError, match="needs at least two datasets"):
        normalise_input(
            pa.table({"source_dataset": ["a"], "unique_id": [1]}), link_type="link_only"
        )
    with pytest.raises(InputError, match="does not have the columns"):
        normalise_input([df, df.drop(columns="x")], link_type="link_only")
    with pytest.raises(InputError, match="does not exist"):
        normalise_input("/nonexistent/file.parquet")
    with pytest.raises(InputError, match="cannot tell the format"):
        normalise_input(__file__)
    with pytest.raises(InputError, match="cannot read input"):
        normalise_input(42)
    with pytest.raises(InputError, match="unique ids must be integers or strings"):
        normalise_input(pd.DataFrame({"unique_id": [1.5, 2.5]}))
    with pytest.raises(InputError, match="column 'mixed'"):
        normalise_input(pd.DataFrame({"unique_id": [1, 2], "mixed": [1, "a"]}))
    with pytest.raises(InputError, match="source dataset column 'source_dataset' has 1 null"):
        normalise_input(
            pa.table({"source_dataset": ["a", None], "unique_id": [1, 2]}),
            link_type="link_and_dedupe",
        )
    with pytest.raises(InputError, match="unknown link_type"):
        normalise_input(df, link_type="link")


def test_check_columns():
    t = pa.table(
        {
            "first_name": ["a"],
            "dob": pa.array([1], pa.date32()),
            "tags": [["x"]],
            "blob": pa.array([b"x"]),
            "st": pa.array([{"a": 1}]),
            "ftags": [[1.5]],
            "btags": [[True]],
        }
    )
    check_columns(t, ["first_name", "dob", "tags", "ftags"])  # float lists: cosine vectors
    with pytest.raises(InputError, match=r"'First_name'.*did you mean 'first_name'"):
        check_columns(t, ["First_name"])
    with pytest.raises(InputError, match=r"'blob'.*binary.*usable types"):
        check_columns(t, ["blob"])
    with pytest.raises(InputError, match=r"'st'.*struct"):
        check_columns(t, ["st"])
    with pytest.raises(InputError, match=r"'btags'"):
        check_columns(t, ["btags"])


def test_reference_data_reads():
    if not DATA.exists():
        pytest.skip(f"reference data not found at {DATA}")
    t = normalise_input(DATA / "historical_50k.parquet")
    assert t.num_rows == 50578
    f = normalise_input(str(DATA / "fake_1000.csv"))
    # empty CSV fields are null, as pandas.read_csv gives them to Splink
    assert f.column("city").null_count == pd.read_csv(DATA / "fake_1000.csv")["city"].isna().sum()
    assert to_arrow(DATA / "fake_1000.csv").num_rows == 1000


def test_link_only_with_an_empty_table_says_which():
    full = pa.table({"unique_id": [1, 2], "x": ["a", "b"]})
    with pytest.raises(InputError, match="'b' are empty"):
        normalise_input({"a": full, "b": full.slice(0, 0)}, link_type="link_only")


def test_a_dict_of_columns_with_mixed_types_names_the_column():
    with pytest.raises(InputError, match="column 'name' of the dict mixes types"):
        normalise_input({"unique_id": [1, 2], "name": ["a", float("nan")]})


def test_reading_and_checking_ids_load_neither_acero_nor_datasets(tmp_path):
    """A parquet file is read, and ids checked for duplicates, without pyarrow.dataset or
    Acero: their shared libraries add ~50 MiB to a process's resident memory."""
    import subprocess
    import sys

    path = tmp_path / "records.parquet"
    pq.write_table(pa.table({"source_dataset": ["a", "b", "b"], "unique_id": [1, 1, 2]}), path)
    code = (
        "import sys, gpulink.io as io\n"
        f"t = io.to_arrow({str(path)!r})\n"
        "io.normalise_input(t, link_type='link_and_dedupe')\n"
        "io.normalise_input(t.drop_columns(['source_dataset']).slice(1))\n"
        "print(sorted(m for m in ('pyarrow.acero', 'pyarrow.dataset') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("chosen", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_importing_gpulink_makes_the_system_allocator_arrows_default_unless_chosen(
    chosen, expected, tmp_path
):
    """mimalloc's per-thread heaps cost the 50k pipeline ~85 MiB of resident memory; a process
    that names an allocator in ARROW_DEFAULT_MEMORY_POOL keeps it. Arrow's C++ reader (the
    parquet file's buffers) allocates from the chosen pool too, not only pyarrow's calls."""
    import os
    import subprocess
    import sys

    if "mimalloc" not in pa.supported_memory_backends():
        pytest.skip("this pyarrow has no mimalloc allocator")
    path = tmp_path / "records.parquet"
    pq.write_table(pa.table({"unique_id": np.arange(100_000)}), path)
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    code = (
        "import gpulink, pyarrow as pa, gpulink.io as io\n"
        f"t = io.to_arrow({str(path)!r})\n"
        "print(pa.default_memory_pool().backend_name, pa.mimalloc_memory_pool().max_memory() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == [expected, str(expected == "mimalloc")]
