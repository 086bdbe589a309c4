"""``linker.table_management``: Splink's term-frequency tables, registered lookups and pairs.

Splink's ``table_management`` methods: :meth:`LinkerTableManagement.compute_tf_table`,
``register_term_frequency_lookup``, ``register_blocked_pairs_for_predict``,
``invalidate_cache``, and, over the linker's registry of named Arrow tables (gpulink keeps no
database: see :mod:`gpulink.named_tables`), ``register_table``, ``register_table_predict``,
``register_labels_table`` and ``delete_tables_created_by_splink_from_db``. A column's term frequencies are those the encoder already counts
(``EncodedColumn.counts``), over every input record (all tables of a link job together), as
Splink's ``count(*) / count(<col>)`` grouped by the non-null values, unless a lookup is
registered for it.

>>> import pyarrow as pa
>>> from gpulink.table import encode_records
>>> t = encode_records(pa.table({"unique_id": [1, 2, 3, 4], "x": ["a", "b", "a", None]}), [])
>>> tf_table(t, "x").to_pydict()
{'x': ['a', 'b'], 'tf_x': [0.6666666666666666, 0.3333333333333333]}
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.errors import InputError
from gpulink.io import find_column
from gpulink.results import LinkResult
from gpulink.table import EncodedColumn, RecordTable, encode_column

if TYPE_CHECKING:
    from gpulink.linker import Linker


def input_column_name(table: RecordTable, column_name: str) -> str:
    """The input column ``column_name`` names: exact, unquoted (``"first name"``) or, as in
    DuckDB, case-insensitive; anything else is an InputError naming the columns there are."""
    name = column_name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('""', '"')
    available = table.data.column_names
    found = find_column(available, name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, available, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise InputError(
        f"column {column_name!r} is not in the input{hint}; term frequencies are computed for "
        f"input columns (not expressions): {', '.join(available[:30])}"
        f"{' ...' if len(available) > 30 else ''}"
    )


def _own_kind(data_type: pa.DataType) -> str | None:
    """The kind the encoder gives a column of this type (None: one it would reject)."""
    from gpulink.table import _natural_kind

    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    if pa.types.is_string_view(data_type):
        data_type = pa.large_string()
    try:
        return _natural_kind(data_type, "")
    except InputError:
        return None


def term_frequency_column(table: RecordTable, column: str) -> EncodedColumn:
    """Input column ``column`` encoded in its own type, whose ``tf``/``counts`` are Splink's
    term frequencies of that column (a model may have encoded it as another kind, say a date
    string parsed to dates, whose values and frequencies can differ: then it is encoded again,
    without replacing the model's)."""
    from gpulink.expressions import canonical

    key = canonical(_quoted(column))
    existing = table.columns.get(key)
    kind = _own_kind(table.data.schema.field(column).type)
    if existing is not None and existing.kind == kind:
        return existing
    encoded = table.with_tf_lookup(encode_column(table.data, _quoted(column)))
    if existing is None:
        table.columns[key] = encoded
    return encoded


def _quoted(column: str) -> str:
    """A column name as an expression gpulink parses (quoted unless a plain identifier)."""
    if column.isidentifier():
        return column
    return '"' + column.replace('"', '""') + '"'


def record_tf(encoded: EncodedColumn) -> pa.Array:
    """Per record, the term frequency of its value (null for a null value), float64."""
    codes = encoded.codes
    values = encoded.tf[np.maximum(codes, 0)] if len(encoded.tf) else np.zeros(len(codes))
    # -1.0: a value a registered lookup lacks (null, as Splink's left join gives it)
    return pa.array(values, pa.float64(), mask=(codes < 0) | (values < 0))


def tf_table(table: RecordTable, column_name: str, *, tf_prefix: str = "tf_") -> pa.Table:
    """Splink's term-frequency table of an input column: ``<column>`` (each non-null value
    once, in its input type) and ``<tf_prefix><column_name>`` (its count over the count of
    non-null values), in order of first appearance in the records (Splink's order is that of
    a SQL group-by: unspecified); a column with a registered lookup gives that lookup."""
    from gpulink.expressions import canonical

    name = input_column_name(table, column_name)
    registered = table.tf_lookups.get(canonical(_quoted(name)))
    if registered is not None:  # Splink returns the registered table (its cache's)
        return registered
    encoded = term_frequency_column(table, name)
    values = encoded.dictionary
    source_type = table.data.schema.field(name).type
    if pa.types.is_dictionary(source_type):
        source_type = source_type.value_type
    if values.type != source_type:
        try:
            values = values.cast(source_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # keep the encoder's type (e.g. large_string for a string view)
    tf = pa.array(encoded.tf, pa.float64())
    if len(values) != len(tf):  # an all-null column: no values, no frequencies
        values, tf = values.slice(0, 0), tf.slice(0, 0)
    unquoted = column_name.strip()
    if len(unquoted) >= 2 and unquoted[0] == unquoted[-1] == '"':
        unquoted = unquoted[1:-1]
    return pa.table({name: values, f"{tf_prefix}{unquoted}": pc.cast(tf, pa.float64())})


def tf_lookup_table(table: RecordTable, input_data, col_name: str, tf_prefix: str) -> pa.Table:
    """A user's term-frequency lookup for input column ``col_name``, checked and normalised:
    columns ``<column>`` (the values, cast to the input column's type) and
    ``<tf_prefix><col_name>`` (float64), as Splink reads them; rows with a null value or a
    null (or NaN) frequency are left out (such values have no term frequency, as those the
    lookup lacks). Anything unusable is an InputError naming the column and the fix."""
    from gpulink.io import to_arrow

    name = input_column_name(table, col_name)
    unquoted = col_name.strip()
    if len(unquoted) >= 2 and unquoted[0] == unquoted[-1] == '"':
        unquoted = unquoted[1:-1].replace('""', '"')
    tf_name = f"{tf_prefix}{unquoted}"
    t = to_arrow(input_data, what=f"the term frequency lookup of {name!r}")
    found = {want: find_column(t.column_names, want) for want in (unquoted, tf_name)}
    missing = [want for want, got in found.items() if got is None]
    if missing:
        raise InputError(
            f"the term frequency lookup of {name!r} lacks the column(s) {missing} (its columns: "
            f"{t.column_names}); it needs {unquoted!r} (the values) and {tf_name!r} (their term "
            f"frequencies), as compute_tf_table({unquoted!r}) writes"
        )
    values = t.column(found[unquoted])
    from gpulink.table import _plain

    target = _plain(table.data.column(name)).type
    try:
        values = _plain(values).cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise InputError(
            f"the term frequency lookup's {unquoted!r} values ({values.type}) cannot be read as "
            f"the input column's type {target} ({exc}); give the values in the input's type"
        ) from None
    try:
        tf = pc.cast(_plain(t.column(found[tf_name])), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InputError(
            f"the term frequency lookup's {tf_name!r} has type {t.column(found[tf_name]).type}; "
            "term frequencies are numbers in (0, 1]"
        ) from None
    tf_np = tf.to_numpy(zero_copy_only=False)
    keep = values.is_valid().to_numpy(zero_copy_only=False) & ~np.isnan(tf_np)
    bad = keep & ~((tf_np > 0) & (tf_np <= 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"the term frequency lookup's {tf_name!r} has {int(bad.sum())} values outside "
            f"(0, 1] (first: {tf_np[first]!r} for {values[first].as_py()!r}); a term frequency "
            "is a value's share of the non-null values"
        )
    values = values.filter(pa.array(keep))
    tf_np = tf_np[keep]
    if len(pc.unique(values)) != len(values):
        counts = pc.value_counts(values)
        dup = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
        raise InputError(
            f"the term frequency lookup of {name!r} lists {len(dup)} values more than once "
            f"(first: {dup[0].as_py()!r}); give each value one row"
        )
    return pa.table({name: values, tf_name: pa.array(tf_np, pa.float64())})


class LinkerTableManagement:
    """``linker.table_management``: Splink's term-frequency tables, registered term-frequency
    lookups and blocked pairs, registered tables (``register_table``,
    ``register_table_predict``, ``register_labels_table``), ``invalidate_cache`` and
    ``delete_tables_created_by_splink_from_db``. gpulink keeps no database: named tables live
    in the linker's registry of Arrow tables (see :mod:`gpulink.named_tables`), which
    ``linker.misc.query_sql`` queries."""

    def __init__(self, linker: Linker):
        self._linker = linker

    def compute_tf_table(self, column_name: str) -> LinkResult:
        """Splink's term-frequency table of an input column.

        Columns ``<column_name>`` (each distinct non-null value once) and
        ``tf_<column_name>`` (the model's ``term_frequency_adjustment_column_prefix``): the
        value's count divided by the number of non-null values, over every input record (all
        tables of a link job). Nulls (and NaN) are neither rows nor counted. Rows come in order
        of first appearance in id order (Splink's order is unspecified). The column may be
        named as in Splink: quoted, or in another case.

        >>> import gpulink as gl
        >>> import gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> settings = gl.SettingsCreator(link_type="dedupe_only",
        ...     comparisons=[cl.ExactMatch("city")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), settings, backend="cpu")
        >>> tf = linker.table_management.compute_tf_table("city")
        >>> tf.columns
        ['city', 'tf_city']
        >>> round(sum(tf.as_dict()["tf_city"]), 12)
        1.0
        """
        from gpulink.named_tables import tf_table_name

        linker = self._linker
        result = LinkResult(
            tf_table(
                linker._record_table(),
                column_name,
                tf_prefix=linker.settings.term_frequency_adjustment_column_prefix,
            )
        )
        return linker._tables.add(result, tf_table_name(column_name), produced=True)

    def register_term_frequency_lookup(self, input_data, col_name: str) -> LinkResult:
        """Splink 5's user-supplied term frequencies for input column ``col_name``: training
        and prediction (and ``compute_tf_table``, real-time scoring, charts) use them instead
        of the frequencies computed from the input, until ``invalidate_cache()``; registering
        again for the column replaces the lookup.

        ``input_data``: a table (pandas, polars, pyarrow, a gpulink result, a path, Splink's
        ``db_api.register(...)``) with Splink's columns ``<col_name>`` (each value once, in or
        castable to the input column's type) and ``tf_<col_name>`` (the model's
        ``term_frequency_adjustment_column_prefix``; a frequency in (0, 1]), as
        ``compute_tf_table`` writes. As in Splink (a left join of the records to the lookup),
        a value the lookup lacks has no term frequency: like a null, its side takes the other
        side's, and a pair with neither gets no adjustment. Returns the lookup as read.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> import pyarrow as pa
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only",
        ...     [cl.ExactMatch("city").configure(term_frequency_adjustments=True)],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("city")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> city = linker.table_management.compute_tf_table("city").to_arrow()
        >>> lookup = pa.table({"city": city["city"], "tf_city": [0.5] * len(city)})
        >>> _ = linker.table_management.register_term_frequency_lookup(lookup, "city")
        >>> pairs = linker.inference.predict().to_pandas()
        >>> bool((pairs["match_weight"].round(9) == pairs["match_weight"][0].round(9)).all())
        True
        """
        linker = self._linker
        table = linker._record_table()
        from gpulink.expressions import canonical

        lookup = tf_lookup_table(
            table, input_data, col_name, linker.settings.term_frequency_adjustment_column_prefix
        )
        key = canonical(_quoted(lookup.column_names[0]))
        linker._tf_lookups[key] = lookup
        if key in table.columns:
            table.columns[key] = table.with_tf_lookup(table.columns[key])
        linker._drop_caches()
        return LinkResult(lookup)

    def register_blocked_pairs_for_predict(self, input_data) -> LinkResult:
        """Splink 5's pre-computed blocked pairs: :meth:`~gpulink.linker.LinkerInference.predict`
        then scores exactly these pairs with the model, instead of blocking with the model's
        rules; a later registration replaces this one, ``invalidate_cache()`` drops it. As in
        Splink, ``predict_chunk`` and ``predict(num_chunks_left=..., ...)`` then refuse.

        ``input_data``: the output of ``compute_blocked_pairs_for_predict(_chunk)`` (Splink's or
        gpulink's, as a table, a dataframe, a file path or Splink's ``db_api.register(...)``):
        ``match_key`` and ``join_key_l``/``join_key_r`` (composite unique ids), or predict's
        id columns instead of the join keys. Every id must name a record of the linker's
        input (an InputError says which does not; Splink's join would drop the pair).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> pairs = linker.inference.compute_blocked_pairs_for_predict_chunk((1, 2), (1, 2))
        >>> _ = linker.table_management.register_blocked_pairs_for_predict(pairs)
        >>> len(linker.inference.predict()) == len(pairs)
        True
        """
        from gpulink.blocked_pairs import registered_pairs

        linker = self._linker
        linker._registered_pairs = registered_pairs(linker, input_data)
        pairs = linker._registered_pairs
        return LinkResult(
            pa.table(
                {
                    "match_key": pc.take(pairs.match_keys, pa.array(pairs.key_code)),
                    "join_key_l": _join_keys(linker, pairs.left),
                    "join_key_r": _join_keys(linker, pairs.right),
                }
            )  # fmt: skip
        )

    def invalidate_cache(self) -> None:
        """Splink 5's ``invalidate_cache``: forget everything derived from the input, and the
        registered term-frequency lookups and blocked pairs (Splink's cache holds those too),
        so that the next step starts afresh: the encoded columns (dictionaries, term
        frequencies), the columns packed for the kernels and real-time scoring's lookups are
        rebuilt on next use. The model (m, u, λ) is kept. gpulink reads the input once, when
        the Linker is made: for changed data make a new Linker.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> n = len(linker.inference.predict())
        >>> pairs = linker.inference.compute_blocked_pairs_for_predict_chunk((1, 2), (1, 2))
        >>> _ = linker.table_management.register_blocked_pairs_for_predict(pairs)
        >>> linker.table_management.invalidate_cache()
        >>> len(linker.inference.predict()) == n
        True
        """
        linker = self._linker
        linker._table = None
        linker._tf_lookups = {}
        linker._registered_pairs = None
        linker._tables.forget_produced()  # Splink's invalidate_cache drops its tables too
        linker._drop_caches()

    def register_table_predict(self, input_data):
        """Splink 5's pre-computed predictions: returns them as a predict result of this
        linker, which :meth:`~gpulink.linker.LinkerClustering.cluster_pairwise_predictions_at_threshold`,
        ``cluster_using_single_best_links``, ``compute_graph_metrics``, charts and
        ``linker.misc.query_sql`` accept wherever they accept ``predict()``'s output.

        ``input_data``: a predictions table (as Splink, ``db_api.register(...)`` of one; also a
        DataFrame, a pyarrow Table, a parquet/CSV path or the name of a table registered with
        this linker) with ``unique_id_l``/``unique_id_r`` (the model's unique id column), for
        link jobs ``source_dataset_l``/``_r``, and ``match_probability`` to cluster at a
        threshold: the columns of ``predict()``'s output (e.g. written earlier with
        ``to_parquet``). Every id must name a record of this linker's input (an InputError
        names the first that does not). The result's ``templated_name`` is
        ``__splink__df_predict``; its ``physical_name`` is that of a registered input,
        else a new ``__splink__df_predict_<hex>``.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name"),
        ...     cl.ExactMatch("dob")], blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> saved = linker.inference.predict().to_pandas()  # e.g. read back from parquet
        >>> df_predict = linker.table_management.register_table_predict(saved)
        >>> df_predict.templated_name
        '__splink__df_predict'
        >>> clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(df_predict, 0.9)
        >>> len(clusters)
        300
        """
        from gpulink.linker import PredictionResult
        from gpulink.named_tables import PREDICT, _as_table, prediction_from_table

        linker = self._linker
        data, physical = _as_table(linker, input_data, "the predictions table")
        if isinstance(input_data, PredictionResult) and input_data.linker_id == id(linker):
            result = PredictionResult(data, input_data.left_index, input_data.right_index)
            result.linker_id = id(linker)
        else:
            result = prediction_from_table(linker, data)
        result.metadata = dict(getattr(input_data, "metadata", None) or {})
        return linker._tables.add(result, PREDICT, physical_name=physical)

    def register_labels_table(self, input_data) -> LinkResult:
        """Splink 5's labels table, for ``linker.evaluation.accuracy_analysis_from_labels_table``
        and ``prediction_errors_from_labels_table`` (which take the result, or its name).

        ``input_data`` (as Splink, ``db_api.register(...)`` of one; also a DataFrame, a pyarrow
        Table, a path, a list of dicts or the name of a table registered with this linker) has
        Splink's columns ``unique_id_l``, ``unique_id_r`` (the model's unique id column),
        ``clerical_match_score`` (1 a match, 0 a non-match) and, for link jobs,
        ``source_dataset_l``/``_r``; a missing column is an InputError naming it. The result's
        ``templated_name`` is ``__splink__df_labels``; its ``physical_name`` is that of a
        registered input, else a new ``__splink__df_labels_<hex>``.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name"),
        ...     cl.ExactMatch("dob")], blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> pairs = linker.inference.predict().as_record_list(limit=2)
        >>> labels = linker.table_management.register_labels_table([
        ...     {"unique_id_l": p["unique_id_l"], "unique_id_r": p["unique_id_r"],
        ...      "clerical_match_score": 1.0} for p in pairs])
        >>> t = linker.evaluation.accuracy_analysis_from_labels_table(labels, output_type="table")
        >>> t.as_record_list()[0]["p"]
        2.0
        """
        from gpulink.named_tables import LABELS, _as_table, check_labels_table

        linker = self._linker
        data, physical = _as_table(linker, input_data, "the labels table")
        check_labels_table(linker, data)
        return linker._tables.add(LinkResult(data), LABELS, physical_name=physical)

    def register_table(self, input_table, table_name: str, overwrite: bool = False) -> LinkResult:
        """Splink's ``register_table``: keep ``input_table`` under ``table_name``, for
        ``linker.misc.query_sql`` and for the methods that take a table name
        (``accuracy_analysis_from_labels_table("my_labels")``...).

        ``input_table``: a dict of columns, a list of dicts (records), a pandas or polars
        DataFrame, a pyarrow Table, a parquet/CSV path or the name of a table already
        registered. The result's ``templated_name`` and ``physical_name`` are ``table_name``.
        A name in use (a registered table, or a result the linker produced and you still
        hold) is a :class:`~gpulink.errors.TableExistsError` unless ``overwrite=True``.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")])
        >>> linker = gl.Linker(synthetic_people(50, seed=2), s, backend="cpu")
        >>> t = linker.table_management.register_table({"a": [666, 777, 888], "b": [4, 5, 6]},
        ...     "test_dict")
        >>> t.physical_name, linker.misc.query_sql("select a from test_dict where b > 4").as_dict()
        ('test_dict', {'a': [777, 888]})
        >>> linker.table_management.register_table({"a": [1]}, "test_dict")
        Traceback (most recent call last):
        ...
        gpulink.errors.TableExistsError: table 'test_dict' is already registered with this linker; pass overwrite=True to replace it, or register the table under another name
        """
        from gpulink.named_tables import register_table

        return register_table(self._linker, input_table, table_name, overwrite)

    def delete_tables_created_by_splink_from_db(self) -> None:
        """Splink's housekeeping: forget the tables gpulink made (the names of predict's,
        the clusters', term-frequency and ``query_sql`` results, which ``query_sql`` then no
        longer sees) and drop its cached intermediate tables (the encoded records and the
        columns packed for the kernels, rebuilt on next use). As in Splink, tables you
        registered (``register_table``, ``register_table_predict``,
        ``register_labels_table``, term-frequency lookups, blocked pairs) are kept, and the
        model is unchanged. Results you hold stay usable: gpulink frees their rows when you
        drop them (Splink drops its tables from the database).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> pairs = linker.inference.predict()
        >>> _ = linker.table_management.register_table({"a": [1]}, "mine")
        >>> linker.table_management.delete_tables_created_by_splink_from_db()
        >>> linker.misc.query_sql("show tables", output_type="pandas")["name"].tolist()
        ['mine']
        >>> len(linker.inference.predict()) == len(pairs)
        True
        """
        linker = self._linker
        linker._tables.forget_produced()
        linker._table = None
        linker._drop_caches()


def _join_keys(linker, records: np.ndarray) -> pa.Array:
    from gpulink.chunking import composite_ids

    table = linker._record_table()
    sd = table.source_dataset if linker.settings.link_type != "dedupe_only" else None
    return pc.take(composite_ids(table.unique_id, sd), pa.array(records))


__all__ = [
    "LinkerTableManagement",
    "input_column_name",
    "record_tf",
    "term_frequency_column",
    "tf_lookup_table",
    "tf_table",
]
