"""The :class:`Linker`: Splink's namespaced API over gpulink's engine.

>>> import gpulink as gl
>>> import gpulink.comparison_library as cl
>>> from gpulink.datasets import synthetic_people
>>> df = synthetic_people(300, seed=2)
>>> settings = gl.SettingsCreator(
...     link_type="dedupe_only",
...     comparisons=[cl.JaroWinklerAtThresholds("first_name"), cl.ExactMatch("dob")],
...     blocking_rules_to_generate_predictions=[gl.block_on("surname")],
... )
>>> linker = gl.Linker(df, settings, backend="cpu")
>>> pairs = linker.inference.predict(threshold_match_probability=0.5)
>>> set(pairs.columns) >= {"unique_id_l", "unique_id_r", "match_weight", "match_probability"}
True
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gpulink.backend import resolve_backend
from gpulink.blocking import prediction_rules, to_blocking_rules
from gpulink.checks import is_integer
from gpulink.errors import InputError, SettingsError
from gpulink.expressions import parse
from gpulink.io import check_columns, normalise_input
from gpulink.named_tables import CLUSTERS, PREDICT, TableRegistry, resolve
from gpulink.results import LinkResult
from gpulink.settings import Settings
from gpulink.table import encode_records
from gpulink.table_management import LinkerTableManagement
from gpulink.training import LinkerTraining, ParameterEstimates
from gpulink.visualisations import LinkerVisualisations

logger = logging.getLogger("gpulink")


#: Steps with more pair indices than this show a progress bar (on a terminal).
PROGRESS_MIN_PAIRS = 50_000_000


def progress_bar(total: int, what: str):
    """A tqdm bar for long steps on a terminal; a silent one otherwise."""
    import sys

    from tqdm.auto import tqdm

    quiet = total < PROGRESS_MIN_PAIRS or not sys.stderr.isatty()
    return tqdm(total=total, desc=what, unit="pair", unit_scale=True, disable=quiet, leave=False)


class PredictionResult(LinkResult):
    """Scored pairs (``linker.inference.predict()``); keeps the record indices for clustering."""

    def __init__(self, table: pa.Table, left: np.ndarray, right: np.ndarray, **kwargs):
        super().__init__(table, **kwargs)
        self.left_index = left
        self.right_index = right
        self.linker_id: int | None = None  # id() of the linker whose records the indices are


class Linker:
    """Link or deduplicate records with a Splink model on the CPU or the GPU.

    ``data``: a table (pandas, polars, pyarrow, cudf, a DuckDB relation, a parquet/CSV path, or
    ``db_api.register(df)`` with Splink's or gpulink's :class:`~gpulink.DuckDBAPI`) or a list of
    them for link jobs (registered tables keep their ``dataset_display_name`` as their
    ``source_dataset``). ``settings``: a :class:`~gpulink.SettingsCreator`, a Splink settings
    object or dict, or a model JSON path. ``backend``: ``"auto"`` (GPU when usable), ``"cpu"`` or
    ``"gpu"``. A Splink ``db_api`` passed in its place is accepted and ignored. Splink 5's
    ``log_level`` sets the level of the ``gpulink`` logger; ``validate_settings`` is accepted
    (settings are always validated).
    """

    def __init__(
        self,
        data,
        settings,
        backend="auto",
        *,
        input_table_aliases: list[str] | None = None,
        set_up_basic_logging: bool = True,
        log_level: int | str | None = None,
        validate_settings: bool = True,
        client=None,
    ):
        if not isinstance(backend, str) and not hasattr(backend, "xp"):
            logger.info("ignoring %s: gpulink runs its own kernels", type(backend).__name__)
            backend = "auto"
        self.backend = resolve_backend(backend)
        self.settings = Settings.from_any(settings)
        self.client = client
        if set_up_basic_logging and not logging.getLogger("gpulink").handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logging.getLogger("gpulink").addHandler(handler)
            logging.getLogger("gpulink").setLevel(logging.INFO)
        if log_level is not None:  # Splink 5's keyword: the level of gpulink's own logger
            logging.getLogger("gpulink").setLevel(log_level)
        del validate_settings  # Splink 5's keyword: gpulink always validates the settings
        if input_table_aliases is not None and isinstance(data, (list, tuple)):
            if len(input_table_aliases) != len(data):
                raise InputError(
                    f"input_table_aliases has {len(input_table_aliases)} names for "
                    f"{len(data)} tables; give one name per table"
                )
            if len(set(input_table_aliases)) != len(input_table_aliases):
                raise InputError(
                    f"input_table_aliases {list(input_table_aliases)} repeats a name; give each "
                    "table its own"
                )
            data = dict(zip(input_table_aliases, data))
        s = self.settings
        source_col = s.source_dataset_column_name if s.link_type != "dedupe_only" else None
        start = time.perf_counter()
        self._data = normalise_input(
            data,
            unique_id_column=s.unique_id_column_name,
            source_dataset_column=source_col,
            link_type=s.link_type,
        )
        check_columns(self._data, sorted(self._raw_columns_used()))
        s.retained_input_columns(self._data.column_names)  # raises on a missing column
        self._table = None
        # register_term_frequency_lookup: canonical column -> lookup; register_blocked_pairs_...
        self._tf_lookups: dict[str, pa.Table] = {}
        self._registered_pairs = None
        # Splink's named tables (register_table & co, predict's and clusters' names): see
        # gpulink.named_tables
        self._tables = TableRegistry()
        self._estimates = ParameterEstimates()
        self._em_sessions: list = []
        self.timings: dict[str, float] = {"load": time.perf_counter() - start}
        self.training = LinkerTraining(self)
        self.inference = LinkerInference(self)
        self.clustering = LinkerClustering(self)
        self.evaluation = LinkerEvaluation(self)
        self.misc = LinkerMisc(self)
        self.blocking_analysis = LinkerBlockingAnalysis(self)
        self.table_management = LinkerTableManagement(self)
        self.visualisations = LinkerVisualisations(self)

    # -- internals ----------------------------------------------------------------------------

    def _raw_columns_used(self) -> set[str]:
        exprs = list(self.settings.column_expressions())
        for rule in to_blocking_rules(self.settings.blocking_rules):
            exprs.extend(rule.expressions)
        cols: set[str] = set()
        for expr in exprs:
            cols.update(parse(expr).columns)
        return cols

    def _record_table(self):
        """The encoded record table (built on first use, columns added as steps need them)."""
        if self._table is None:
            start = time.perf_counter()
            s = self.settings
            self._table = encode_records(
                self._data,
                [],
                unique_id_column=s.unique_id_column_name,
                source_dataset_column=(
                    s.source_dataset_column_name if s.link_type != "dedupe_only" else None
                ),
                link_type=s.link_type,
            )
            self._table.tf_lookups = self._tf_lookups
            self.timings["encode"] = time.perf_counter() - start
        return self._table

    def _drop_caches(self) -> None:
        """Forget what was derived from the encoded records' columns and term frequencies (the
        packed kernel columns, real-time scoring's lookups); they are rebuilt on next use."""
        self.__dict__.pop("_packed_cache", None)
        self.__dict__.pop("_record_scorer", None)

    def _scorer(self, rules, *, use_tf: bool = True):
        from gpulink.predict import Scorer

        # The packed columns depend on the records and the columns only: shared by every
        # step of this linker (u, EM sessions, predict) instead of re-packed by each.
        cache = self.__dict__.setdefault("_packed_cache", {})
        return Scorer(
            self._record_table(), self.settings, rules, use_tf=use_tf, backend=self.backend,
            packed_cache=cache,
        )  # fmt: skip

    def _history(self, step: str, **details) -> None:
        entry = {"step": step, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        entry.update(details)
        entry["backend"] = self.backend.name
        self.settings.training_history.append(entry)

    def __repr__(self) -> str:
        return f"<gpulink.Linker {self.settings.link_type} on {self.backend.name}, {self._data.num_rows} records>"


#: Splink 5's refusals once blocked pairs are registered (``SplinkException`` there).
REGISTERED_PREDICT_CHUNK = (
    "Blocked pairs have been manually registered; call linker.inference.predict() to score "
    "them. linker.inference.predict_chunk() is only for letting gpulink compute blocking for a "
    "specific chunk (linker.table_management.invalidate_cache() drops the registered pairs)."
)
REGISTERED_PREDICT_CHUNKS = (
    "predict(num_chunks_left=..., num_chunks_right=...) cannot be used when blocked pairs have "
    "been manually registered using linker.table_management.register_blocked_pairs_for_predict()"
    ". gpulink cannot own chunking of a table you have already materialised. Call "
    "linker.inference.predict() with no chunk arguments to score the registered table."
)


def _check_chunk_pairs(chunk_pairs) -> int:
    from gpulink.predict import DEFAULT_CHUNK_PAIRS

    if chunk_pairs is None:
        return DEFAULT_CHUNK_PAIRS
    if not is_integer(chunk_pairs) or chunk_pairs < 1:
        raise SettingsError(f"chunk_pairs must be a positive integer, got {chunk_pairs!r}")
    return int(chunk_pairs)


def _check_warning_mode(warning_mode) -> None:
    if warning_mode not in ("auto", "always", "never"):
        raise SettingsError(
            f"warning_mode must be one of 'auto', 'always' or 'never'; got {warning_mode!r}"
        )


class LinkerInference:
    """``linker.inference``: score pairs."""

    def __init__(self, linker: Linker):
        self._linker = linker

    def deterministic_link(self) -> PredictionResult:
        """Splink 5's deterministic linkage: every pair the prediction blocking rules admit.

        No model is needed (``comparisons`` may be empty) and nothing is scored. Columns as
        Splink's: the source dataset column (link jobs) and unique id ``_l``/``_r``, the columns
        each comparison reads ``_l``/``_r`` with ``tf_*_l``/``_r`` after those of levels with
        term-frequency adjustments, the columns only the rules read (with
        ``retain_matching_columns``), ``additional_columns_to_retain``, ``match_key`` (see
        :func:`gpulink.deterministic.output_columns`). ``metadata["is_deterministic_link"]`` is
        True; ``linker.clustering.cluster_pairwise_predictions_at_threshold(result)`` clusters it.

        >>> import gpulink as gl
        >>> from gpulink.datasets import synthetic_people
        >>> settings = gl.SettingsCreator(link_type="dedupe_only",
        ...     blocking_rules_to_generate_predictions=[gl.block_on("first_name", "surname", "dob")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), settings, backend="cpu")
        >>> pairs = linker.inference.deterministic_link()
        >>> pairs.columns
        ['unique_id_l', 'unique_id_r', 'first_name_l', 'first_name_r', 'surname_l', 'surname_r',
         'dob_l', 'dob_r', 'match_key']
        >>> clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs)
        >>> len(clusters) == 300
        True
        """
        from gpulink.deterministic import deterministic_link

        return self._linker._tables.add(deterministic_link(self._linker), PREDICT, produced=True)

    def predict(
        self,
        threshold_match_probability: float | None = None,
        threshold_match_weight: float | None = None,
        num_chunks_left: int | None = None,
        num_chunks_right: int | None = None,
        warning_mode: str = "auto",
        *,
        chunk_pairs: int | None = None,
    ) -> PredictionResult:
        """Score every pair the blocking rules produce; keep those at or above the threshold.

        Output columns as Splink's (see :func:`gpulink.predict.pairs_table`): match_weight,
        match_probability, the source dataset column ``_l``/``_r`` (link jobs), unique_id_l/_r,
        per comparison its columns ``_l``/``_r`` and ``gamma_*`` (``retain_matching_columns``)
        and ``tf_*``/``mw_*`` (``retain_intermediate_calculation_columns``), the columns only
        the blocking rules read (``retain_matching_columns``), ``additional_columns_to_retain``
        and match_key.

        Once blocked pairs are registered (``linker.table_management.
        register_blocked_pairs_for_predict``), predict scores exactly those, as Splink: each
        with its registered ``match_key``, oriented as predict orients pairs (the smaller id
        on the left). Splink 5's ``num_chunks_left``/``num_chunks_right`` are accepted
        (refused with registered pairs, as in Splink) and change nothing: gpulink always scores
        in bounded chunks of the pair space (``chunk_pairs`` pair indices per launch), and the
        union of Splink's chunks is this result; for one chunk use :meth:`predict_chunk`.
        ``warning_mode`` is Splink's ('auto', 'always' or 'never'; gpulink does not warn).
        """

        linker = self._linker
        chunk_pairs = _check_chunk_pairs(chunk_pairs)
        registered = linker._registered_pairs
        if registered is not None and (num_chunks_left is not None or num_chunks_right is not None):
            raise SettingsError(REGISTERED_PREDICT_CHUNKS)
        for name, value in (("num_chunks_left", num_chunks_left),
                            ("num_chunks_right", num_chunks_right)):  # fmt: skip
            if value is not None and (not is_integer(value) or value < 1):
                raise SettingsError(
                    f"{name} must be a positive integer (the number of chunks), got {value!r}"
                )
        _check_warning_mode(warning_mode)
        if linker.client is not None and registered is None:
            from gpulink.distributed import predict_distributed

            result = predict_distributed(
                linker, linker.client,
                threshold_match_probability=threshold_match_probability,
                threshold_match_weight=threshold_match_weight,
                chunk_pairs=chunk_pairs,
            )  # fmt: skip
            result.linker_id = id(linker)
            return linker._tables.add(result, PREDICT, produced=True)
        if registered is not None:
            from gpulink.blocked_pairs import registered_plan
            from gpulink.blocking import to_blocking_rules

            rules = to_blocking_rules(linker.settings.blocking_rules)
            scorer = linker._scorer(rules)
            plan = registered_plan(scorer.table, registered)
            result = self._score_plan(
                scorer, plan, threshold_match_probability, threshold_match_weight,
                chunk_pairs, match_keys=registered.match_keys,
            )  # fmt: skip
        else:
            scorer = linker._scorer(prediction_rules(linker.settings))
            result = self._score_plan(
                scorer, scorer.plan(), threshold_match_probability, threshold_match_weight,
                chunk_pairs,
            )  # fmt: skip
        return linker._tables.add(result, PREDICT, produced=True)

    def _score_plan(
        self, scorer, plan, threshold_match_probability, threshold_match_weight, chunk_pairs,
        *, match_keys: pa.Array | None = None,
    ) -> PredictionResult:  # fmt: skip
        """Score the pairs of ``plan`` (predict's, a chunk's, or registered pairs', whose
        ``match_key`` is ``match_keys[rule]``) in bounded chunks of its pair-index space."""
        from gpulink.predict import keeps_gammas, pairs_table, threshold_to_weight

        linker = self._linker
        settings = linker.settings
        threshold = threshold_to_weight(threshold_match_probability, threshold_match_weight)
        start = time.perf_counter()
        plan_pairs = plan.n_candidates
        with progress_bar(plan_pairs, "scoring pairs") as progress:
            scored = scorer.score(
                threshold,
                keep_gammas=keeps_gammas(settings),
                chunk_pairs=chunk_pairs,
                plan=plan,
                progress=progress,
            )
        table = pairs_table(scorer, scored)
        if match_keys is not None:
            at = table.column_names.index("match_key")
            keys = pc.take(match_keys, pa.array(scored.match_key.astype(np.int32)))
            table = table.set_column(at, "match_key", keys)
        seconds = time.perf_counter() - start
        linker.timings["predict"] = seconds
        linker.last_predict_stats = {
            # the rules' pair-index space: each rule's pairs before cross-rule dedup
            "candidate_pairs": int(plan_pairs),
            "pairs_kept": int(len(scored.left)),
            "seconds": seconds,
            "pairs_per_second": plan_pairs / seconds if seconds > 0 else float("nan"),
        }
        logger.info(
            "Walked %d candidate pairs (all rules, before cross-rule dedup) in %.2fs "
            "(%.3g/s); kept %d",
            plan_pairs, seconds, linker.last_predict_stats["pairs_per_second"], len(scored.left),
        )  # fmt: skip
        result = PredictionResult(table, scored.left, scored.right)
        result.linker_id = id(linker)
        return result

    def predict_chunk(
        self,
        left_chunk: tuple[int, int] | None = None,
        right_chunk: tuple[int, int] | None = None,
        threshold_match_probability: float | None = None,
        threshold_match_weight: float | None = None,
        warning_mode: str = "auto",
        *,
        chunk_pairs: int | None = None,
    ) -> PredictionResult:
        """Splink 5's ``predict_chunk``: predict's scored pairs whose left record is in
        ``left_chunk`` and whose right record is in ``right_chunk``.

        A chunk is ``(chunk_number, total_chunks)``, 1-indexed, e.g. ``(1, 3)``; None (or
        ``(1, 1)``) is every record. A record's chunk is Splink's: ``(ABS(hash(id)) % total) +
        1`` with DuckDB's ``hash()`` of its composite unique id (the id for dedupe_only,
        ``source_dataset || '-__-' || id`` for link jobs; integer and string ids, see
        :mod:`gpulink.chunking`), and the left record is the one with the smaller id, so a
        chunk holds Splink's pairs. Over every ``(i of n) x (j of m)`` the chunks are disjoint
        and together are ``predict()``'s pairs, with its weights; each chunk walks only its own
        pairs. Columns and thresholds as :meth:`predict`. Not available once blocked pairs are
        registered (``register_blocked_pairs_for_predict``): then call :meth:`predict`.
        ``warning_mode`` is Splink's ('auto', 'always' or 'never'; gpulink does not warn).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> chunks = [linker.inference.predict_chunk((i, 2), (j, 3))
        ...           for i in (1, 2) for j in (1, 2, 3)]
        >>> sum(len(c) for c in chunks) == len(linker.inference.predict())
        True
        """
        from gpulink.chunking import build_chunk_plan, check_chunk, chunk_mask

        linker = self._linker
        if linker._registered_pairs is not None:
            raise SettingsError(REGISTERED_PREDICT_CHUNK)
        left_chunk = check_chunk(left_chunk, "left_chunk")
        right_chunk = check_chunk(right_chunk, "right_chunk")
        chunk_pairs = _check_chunk_pairs(chunk_pairs)
        _check_warning_mode(warning_mode)
        scorer = linker._scorer(prediction_rules(linker.settings))
        left, right = chunk_mask(scorer.table, left_chunk), chunk_mask(scorer.table, right_chunk)
        if left is None and right is None:
            plan = scorer.plan()
        else:
            plan = build_chunk_plan(
                scorer.table, scorer.rules, linker.settings.link_type, left, right
            )
        result = self._score_plan(
            scorer, plan, threshold_match_probability, threshold_match_weight, chunk_pairs
        )
        return linker._tables.add(result, PREDICT, produced=True)

    def compute_blocked_pairs_for_predict(self) -> PredictionResult:
        """Splink 5's candidate pairs that :meth:`predict` scores (the prediction blocking
        rules, cross-rule dedup applied), materialised, unscored.

        Columns: Splink's ``match_key`` (the rule, as a string), ``join_key_l`` and
        ``join_key_r`` (Splink's composite unique ids: the id for dedupe_only,
        ``source_dataset || '-__-' || id`` for link jobs), then predict's source dataset
        ``_l``/``_r`` (link jobs) and unique id ``_l``/``_r`` columns. Write it out and, in
        another job, pass it to ``linker.table_management.register_blocked_pairs_for_predict``
        so that predict scores exactly these pairs (see :mod:`gpulink.blocked_pairs`).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> pairs = linker.inference.compute_blocked_pairs_for_predict()
        >>> len(pairs) == len(linker.inference.predict())
        True
        >>> pairs.columns[:3]
        ['match_key', 'join_key_l', 'join_key_r']
        """
        return self.compute_blocked_pairs_for_predict_chunk()

    def compute_blocked_pairs_for_predict_chunk(
        self,
        left_chunk: tuple[int, int] | None = None,
        right_chunk: tuple[int, int] | None = None,
    ) -> PredictionResult:
        """Splink 5's candidate pairs of one chunk (those :meth:`predict_chunk` scores with the
        same chunks), as :meth:`compute_blocked_pairs_for_predict`'s table.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> pairs = linker.inference.compute_blocked_pairs_for_predict_chunk((1, 2), (2, 2))
        >>> len(pairs) == len(linker.inference.predict_chunk((1, 2), (2, 2)))
        True
        """
        from gpulink.blocked_pairs import blocked_pairs_result
        from gpulink.chunking import build_chunk_plan, check_chunk, chunk_mask

        linker = self._linker
        left_chunk = check_chunk(left_chunk, "left_chunk")
        right_chunk = check_chunk(right_chunk, "right_chunk")
        rules = prediction_rules(linker.settings)
        table = linker._record_table()
        linker.blocking_analysis._rules(rules, "compute_blocked_pairs_for_predict")
        left, right = chunk_mask(table, left_chunk), chunk_mask(table, right_chunk)
        if left is None and right is None:
            from gpulink.blocking import build_plan

            plan = build_plan(table, rules, linker.settings.link_type)
        else:
            plan = build_chunk_plan(table, rules, linker.settings.link_type, left, right)
        return blocked_pairs_result(linker, plan)

    def score_pair(self, record_left, record_right, include_found_by_blocking_rules=False):
        """Splink 5's ``score_pair``: score two records (dicts) that need not be in the input.

        Output: predict's columns, all of them (matching and intermediate), ``match_key`` 0 and,
        with ``include_found_by_blocking_rules``, whether a prediction rule pairs the records.
        Term frequencies: a record's ``tf_<column>`` where given, else its value's frequency in
        this linker's input (none for a value the input lacks). See :mod:`gpulink.realtime`.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> df = synthetic_people(200, seed=3)
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname"), cl.ExactMatch("dob")])
        >>> linker = gl.Linker(df, s, backend="cpu")
        >>> a = {"unique_id": "new", "surname": "Smith", "dob": "1990-01-02"}
        >>> r = linker.inference.score_pair(a, {**a, "unique_id": "old", "dob": None})
        >>> r.to_pandas()[["gamma_surname", "gamma_dob", "match_key"]].values.tolist()
        [[1, -1, 0]]
        """
        from gpulink.realtime import score_pair

        return score_pair(self._linker, record_left, record_right, include_found_by_blocking_rules)

    def score_pairs(self, records_left, records_right, include_found_by_blocking_rules=False):
        """Splink 5's ``score_pairs``: every (left, right) pair of two lists of records (dicts,
        or tables), as :meth:`score_pair`, in left-major order; no blocking rule applies."""
        from gpulink.realtime import score_records

        return score_records(
            self._linker, records_left, records_right,
            include_found_by_blocking_rules=include_found_by_blocking_rules,
        )  # fmt: skip

    def predict_within(self, records, **kwargs):
        """Splink 5's ``predict_within``: blocked, scored pairs within ``records`` (a table or a
        list of tables); see :func:`gpulink.incremental.predict_within`."""
        from gpulink.incremental import predict_within

        return predict_within(self._linker, records, **kwargs)

    def predict_between(self, left, right, **kwargs):
        """Splink 5's ``predict_between``: blocked, scored pairs of one ``left`` and one
        ``right`` record (say the input and new records); see
        :func:`gpulink.incremental.predict_between`."""
        from gpulink.incremental import predict_between

        return predict_between(self._linker, left, right, **kwargs)

    def compare_two_records(self, record_1, record_2, include_found_by_blocking_rules=False):
        """Splink 4's name of :meth:`score_pair` (same arguments, same result)."""
        return self.score_pair(record_1, record_2, include_found_by_blocking_rules)


class LinkerClustering:
    """``linker.clustering``: connected components of the scored pairs."""

    def __init__(self, linker: Linker):
        self._linker = linker

    def cluster_pairwise_predictions_at_threshold(
        self,
        df_predict: PredictionResult,
        threshold_match_probability: float | None = None,
        threshold_match_weight: float | None = None,
    ) -> LinkResult:
        """Every record with the cluster id of its connected component (singletons too).

        Pairs with match probability >= the threshold are links (no threshold: every pair, as
        for ``deterministic_link()``'s pairs, which have no match probability); ``cluster_id`` is the smallest
        unique id of the cluster, as Splink's. Columns as Splink's: ``cluster_id``, then every
        input column (the first input table's order), then, for link jobs given as several
        tables, the source dataset column gpulink added.
        """
        from gpulink.clustering import (
            cluster_at_threshold,
            clusters_with_records,
            threshold_probability,
        )

        linker = self._linker
        table = linker._record_table()
        start = time.perf_counter()
        df_predict = resolve(linker, df_predict, "cluster_pairwise_predictions_at_threshold")
        if not isinstance(df_predict, PredictionResult) or df_predict.linker_id not in (
            None,
            id(linker),
        ):
            raise InputError(
                "cluster_pairwise_predictions_at_threshold needs the result of "
                "linker.inference.predict() or deterministic_link() from this linker (its pairs "
                "are record positions in this linker's input), or a predictions table "
                "registered with linker.table_management.register_table_predict(table); for "
                "another linker's predictions use that linker, "
                "or gpulink.clustering.cluster_pairwise_predictions_at_threshold on a table "
                "of unique ids"
            )
        pairs = df_predict.to_arrow()
        probabilities = (
            pairs.column("match_probability").to_numpy()
            if "match_probability" in pairs.column_names
            else None  # deterministic_link: a threshold is then an error, as in Splink
        )
        result = cluster_at_threshold(
            table.unique_id,
            df_predict.left_index,
            df_predict.right_index,
            probabilities,
            source_dataset=table.source_dataset
            if linker.settings.link_type != "dedupe_only"
            else None,
            unique_id_column_name=linker.settings.unique_id_column_name,
            threshold_match_probability=threshold_match_probability,
            threshold_match_weight=threshold_match_weight,
            backend=linker.backend.name,
        )
        out = clusters_with_records(result.column("cluster_id"), table.data)
        linker.timings["cluster"] = time.perf_counter() - start
        p = threshold_probability(threshold_match_probability, threshold_match_weight)
        result = LinkResult(out, metadata={} if p is None else {"threshold_match_probability": p})
        return linker._tables.add(result, CLUSTERS, produced=True)

    def cluster_using_single_best_links(
        self,
        df_predict: PredictionResult,
        duplicate_free_datasets: list[str],
        threshold_match_probability: float | None = None,
        threshold_match_weight: float | None = None,
        ties_method: str = "lowest_id",
    ) -> LinkResult:
        """Splink 5's single best links clustering: at most one record of each dataset in
        ``duplicate_free_datasets`` per cluster; see :mod:`gpulink.single_best_links`.

        Columns as :meth:`cluster_pairwise_predictions_at_threshold`'s; ``ties_method`` is
        ``"lowest_id"`` (a tie links to the smallest id) or ``"drop"`` (tied links are dropped).
        """
        from gpulink.single_best_links import linker_single_best_links

        start = time.perf_counter()
        out = linker_single_best_links(
            self._linker,
            resolve(self._linker, df_predict, "cluster_using_single_best_links"),
            duplicate_free_datasets,
            threshold_match_probability,
            threshold_match_weight,
            ties_method,
        )
        self._linker.timings["cluster"] = time.perf_counter() - start
        return self._linker._tables.add(out, CLUSTERS, produced=True)

    def compute_graph_metrics(
        self,
        df_predict: LinkResult,
        df_clustered: LinkResult,
        *,
        threshold_match_probability: float | None = None,
    ):
        """Splink's node, edge and cluster metrics (``.nodes``, ``.edges``, ``.clusters``).

        Edges are the pairs of ``df_predict`` at or above ``threshold_match_probability``
        (default: the clustering threshold ``df_clustered`` records); the metrics and their
        definitions are Splink's, see :mod:`gpulink.graph_metrics`.
        """
        from gpulink.graph_metrics import linker_graph_metrics

        linker = self._linker
        return linker_graph_metrics(
            linker,
            resolve(linker, df_predict, "compute_graph_metrics"),
            resolve(linker, df_clustered, "compute_graph_metrics"),
            threshold_match_probability,
        )


class LinkerEvaluation:
    """``linker.evaluation``: accuracy against known truth; unlinkable records."""

    def __init__(self, linker: Linker):
        self._linker = linker

    def accuracy_against_clusters(
        self,
        df_predict: LinkResult,
        cluster_column: str = "cluster",
        threshold: float | None = None,
    ) -> dict:
        """Pairwise precision, recall and F1 of predicted pairs against a true cluster column."""
        from gpulink.evaluation import pairwise_accuracy

        linker = self._linker
        uid = linker.settings.unique_id_column_name
        truth = linker._data.select([uid, cluster_column])
        return pairwise_accuracy(
            df_predict.to_arrow(), truth, threshold=threshold,
            uid_column=uid, cluster_column=cluster_column,
        )  # fmt: skip

    def accuracy_analysis_from_labels_column(
        self,
        labels_column_name: str,
        *,
        threshold_match_probability: float = 0.5,
        match_weight_round_to_nearest: float | None = 0.1,
        output_type: str = "threshold_selection",
        add_metrics: list[str] = [],  # noqa: B006 - Splink's signature; never mutated
        positives_not_captured_by_blocking_rules_scored_as_zero: bool = True,
    ):
        """Splink 5's truth-space table (``output_type="table"``, a LinkResult) or chart
        (``"threshold_selection"``, ``"accuracy"``, ``"roc"``, ``"precision_recall"``: Altair)
        against the true cluster in ``labels_column_name``; see :mod:`gpulink.accuracy`.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> df = synthetic_people(300, seed=2)
        >>> linker = gl.Linker(df, gl.SettingsCreator(link_type="dedupe_only",
        ...     comparisons=[cl.ExactMatch("surname"), cl.ExactMatch("dob")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("dob")]), backend="cpu")
        >>> t = linker.evaluation.accuracy_analysis_from_labels_column(
        ...     "cluster", output_type="table").as_pandas_dataframe()
        >>> int(t["total_clerical_labels"][0]) == 300 * 299 // 2
        True
        """
        from gpulink.accuracy import _check_options, accuracy_analysis, labelled_pairs_from_column

        _check_options(add_metrics, output_type)
        scored_as_zero = positives_not_captured_by_blocking_rules_scored_as_zero
        pairs = labelled_pairs_from_column(
            self._linker, labels_column_name, score_missed_positives=not scored_as_zero
        )
        return accuracy_analysis(
            pairs, threshold_match_probability=threshold_match_probability,
            match_weight_round_to_nearest=match_weight_round_to_nearest,
            output_type=output_type, add_metrics=add_metrics,
            not_found_scored_as_zero=scored_as_zero,
        )  # fmt: skip

    def accuracy_analysis_from_labels_table(
        self,
        labels_splinkdataframe_or_table_name,
        *,
        threshold_match_probability: float = 0.5,
        match_weight_round_to_nearest: float | None = 0.1,
        output_type: str = "threshold_selection",
        add_metrics: list[str] = [],  # noqa: B006 - Splink's signature; never mutated
    ):
        """As :meth:`accuracy_analysis_from_labels_column`, from a table of labelled pairs
        (``unique_id_l``, ``unique_id_r``, link jobs ``source_dataset_l``/``_r``,
        ``clerical_match_score``: a table, dataframe, gpulink result or file path). Pairs the
        prediction rules would not produce count as predicted non-matches at every threshold.

        >>> import pyarrow as pa
        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> df = synthetic_people(300, seed=2)
        >>> linker = gl.Linker(df, gl.SettingsCreator(link_type="dedupe_only",
        ...     comparisons=[cl.ExactMatch("surname"), cl.ExactMatch("dob")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("dob")]), backend="cpu")
        >>> pairs = linker.inference.predict().to_arrow().slice(0, 3)
        >>> labels = pa.table({"unique_id_l": pairs["unique_id_l"],
        ...     "unique_id_r": pairs["unique_id_r"], "clerical_match_score": [1.0, 0.0, 0.0]})
        >>> t = linker.evaluation.accuracy_analysis_from_labels_table(labels, output_type="table")
        >>> t.as_record_list()[0]["p"], t.as_record_list()[0]["n"]
        (1.0, 2.0)
        """
        from gpulink.accuracy import _check_options, accuracy_analysis, labelled_pairs_from_table

        _check_options(add_metrics, output_type)
        pairs = labelled_pairs_from_table(self._linker, labels_splinkdataframe_or_table_name)
        return accuracy_analysis(
            pairs, threshold_match_probability=threshold_match_probability,
            match_weight_round_to_nearest=match_weight_round_to_nearest,
            output_type=output_type, add_metrics=add_metrics,
        )  # fmt: skip

    def prediction_errors_from_labels_column(
        self,
        label_colname: str,
        include_false_positives: bool = True,
        include_false_negatives: bool = True,
        threshold_match_probability: float = 0.5,
    ) -> LinkResult:
        """Splink 5's false positives and false negatives against the true cluster in
        ``label_colname``: the pairs the prediction rules produce and those sharing a label are
        scored, and a positive the rules miss is a false negative; columns
        ``clerical_match_score``, ``found_by_blocking_rules``, then predict's with the labels
        column. See :mod:`gpulink.prediction_errors`.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> df = synthetic_people(300, seed=2)
        >>> linker = gl.Linker(df, gl.SettingsCreator(link_type="dedupe_only",
        ...     comparisons=[cl.ExactMatch("surname"), cl.ExactMatch("dob")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("dob")]), backend="cpu")
        >>> errors = linker.evaluation.prediction_errors_from_labels_column(
        ...     "cluster", include_false_positives=False).as_pandas_dataframe()
        >>> bool((errors["clerical_match_score"] == 1.0).all())
        True
        >>> list(errors.columns[:3])
        ['clerical_match_score', 'found_by_blocking_rules', 'match_weight']
        """
        from gpulink.prediction_errors import prediction_errors_from_column

        return prediction_errors_from_column(
            self._linker, label_colname,
            include_false_positives=include_false_positives,
            include_false_negatives=include_false_negatives,
            threshold=threshold_match_probability,
        )  # fmt: skip

    def prediction_errors_from_labels_table(
        self,
        labels_splinkdataframe_or_table_name,
        include_false_positives: bool = True,
        include_false_negatives: bool = True,
        threshold_match_probability: float = 0.5,
    ) -> LinkResult:
        """Splink 5's false positives and false negatives among labelled pairs (``unique_id_l``,
        ``unique_id_r``, link jobs ``source_dataset_l``/``_r``, ``clerical_match_score``: a
        table, dataframe, gpulink result or file path); every labelled pair is scored, and the
        result ends with ``clerical_match_score``, ``found_by_blocking_rules`` and
        ``truth_status`` (``"FP"``/``"FN"``). See :mod:`gpulink.prediction_errors`.

        >>> import pyarrow as pa
        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> df = synthetic_people(300, seed=2)
        >>> linker = gl.Linker(df, gl.SettingsCreator(link_type="dedupe_only",
        ...     comparisons=[cl.ExactMatch("surname"), cl.ExactMatch("dob")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("dob")]), backend="cpu")
        >>> pairs = linker.inference.predict().to_arrow().slice(0, 3)
        >>> labels = pa.table({"unique_id_l": pairs["unique_id_l"],
        ...     "unique_id_r": pairs["unique_id_r"], "clerical_match_score": [0.0, 0.0, 0.0]})
        >>> errors = linker.evaluation.prediction_errors_from_labels_table(labels)
        >>> errors.as_pandas_dataframe()["truth_status"].tolist()
        ['FP', 'FP', 'FP']
        """
        from gpulink.prediction_errors import prediction_errors_from_table

        return prediction_errors_from_table(
            self._linker, labels_splinkdataframe_or_table_name,
            include_false_positives=include_false_positives,
            include_false_negatives=include_false_negatives,
            threshold=threshold_match_probability,
        )  # fmt: skip

    def unlinkables_chart(
        self,
        x_col: str = "match_weight",
        name_of_data_in_title: str | None = None,
        as_dict: bool = False,
    ):
        """Splink 5's unlinkable records: each input record is scored against itself, and the
        chart shows the share of records whose self-link stays below each threshold (they
        hold too little information to be linked at it even to themselves).

        ``x_col``: ``"match_weight"`` or ``"match_probability"`` on the x axis;
        ``name_of_data_in_title`` is added to the title; ``as_dict=True`` returns the
        Vega-Lite spec (a dict) instead of the chart. The rows are Splink's (weights rounded to
        2 places, probabilities to 5, self-links of probability 1 left out): see
        :mod:`gpulink.unlinkables`. Below, 7.5% of the records (those missing a surname or a dob)
        cannot reach a match weight above -3.29 even against themselves.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> from gpulink.visualisations import chart_records
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("surname"), cl.ExactMatch("dob")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> chart = linker.evaluation.unlinkables_chart(name_of_data_in_title="people")
        >>> [(r["match_weight"], round(r["cum_prop"], 3)) for r in chart_records(chart)]
        [(-3.29, 0.075), (6.71, 1.0)]
        >>> chart.to_dict()["title"]["text"]
        'Unlinkable records - people'
        """
        from gpulink.unlinkables import self_link_scores, unlinkables_records
        from gpulink.visualisations import UNLINKABLES_X, unlinkables_chart

        if x_col not in UNLINKABLES_X:  # before the scoring, which takes a while on big inputs
            raise SettingsError(
                f"unlinkables_chart: x_col must be 'match_weight' or 'match_probability', got "
                f"{x_col!r}"
            )
        records = unlinkables_records(self_link_scores(self._linker))
        chart = unlinkables_chart(records, x_col=x_col, name_of_data=name_of_data_in_title)
        return chart.to_dict() if as_dict else chart


class LinkerMisc:
    """``linker.misc``: save the model; query the linker's named tables with SQL."""

    def __init__(self, linker: Linker):
        self._linker = linker

    def save_model_to_json(
        self,
        out_path: str | None = None,
        overwrite: bool = False,
        *,
        splink_compatible: bool = False,
    ):
        """Write the model (with trained m/u, λ and the training history) as JSON, atomically.

        Returns the model dict. ``splink_compatible=True`` leaves out the gpulink section so
        that Splink's ``Linker`` loads the file.
        """
        settings = self._linker.settings
        if out_path is not None:
            settings.save_model_to_json(
                out_path, overwrite=overwrite, splink_compatible=splink_compatible
            )
        return settings.to_splink_dict() if splink_compatible else settings.to_dict()

    def query_sql(self, sql: str, output_type: str = "splink_df"):
        """Splink's ``query_sql``: run SQL over this linker's named tables, with DuckDB.

        gpulink has no SQL engine of its own: the query runs on a fresh in-memory DuckDB
        connection (``pip install duckdb``; without it a MissingDependency) in which every table
        this linker has a name for is visible under that name: tables registered with
        ``linker.table_management`` (``register_table``'s name; ``register_table_predict``'s
        and ``register_labels_table``'s ``physical_name``) and the results it produced that you
        still hold (predict, clusters, term-frequency tables, earlier queries) under their
        ``physical_name``; a templated name (``__splink__df_predict``,
        ``__splink__df_clustered_with_input_data``...) is the latest such table. Only queries
        run (tables made with ``CREATE`` are not kept). ``output_type``: ``"splink_df"`` (or
        ``"splinkdf"``: a result named ``__splink__df_sql_query_<hex>``, itself queryable) or
        ``"pandas"``, as Splink's.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname")])
        >>> linker = gl.Linker(synthetic_people(300, seed=2), s, backend="cpu")
        >>> df_predict = linker.inference.predict()
        >>> top = linker.misc.query_sql(f"select * from {df_predict.physical_name} limit 10")
        >>> len(top), top.columns == df_predict.columns
        (10, True)
        >>> n = linker.misc.query_sql("select count(*) as n from __splink__df_predict", "pandas")
        >>> int(n["n"][0]) == len(df_predict)
        True
        """
        from gpulink.named_tables import query_sql

        return query_sql(self._linker, sql, output_type)


class LinkerBlockingAnalysis:
    """``linker.blocking_analysis``: Splink 5's blocking analysis over the linker's records,
    link type and ids, counted exactly (``record_sample_proportion`` is accepted and ignored:
    nothing is sampled). Rules are any the model's blocking rules could be, and need not be the
    model's; the methods that take a list default to the model's prediction rules.

    >>> import gpulink as gl
    >>> from gpulink.datasets import synthetic_people
    >>> s = gl.SettingsCreator("dedupe_only", [],
    ...     blocking_rules_to_generate_predictions=[gl.block_on("surname"), gl.block_on("dob")])
    >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
    >>> [r["match_key"] for r in linker.blocking_analysis.count_comparisons_from_blocking_rules()]
    [0, 1]
    """

    def __init__(self, linker: Linker):
        self._linker = linker

    def _rules(self, blocking_rules, what: str):
        """The rules (the model's prediction rules when None), their columns checked against
        the input and encoded."""
        linker = self._linker
        if blocking_rules is None:
            blocking_rules = linker.settings.blocking_rules
            if not blocking_rules:
                raise SettingsError(
                    f"blocking_analysis.{what}: the model has no "
                    "blocking_rules_to_generate_predictions; add them to the settings or pass "
                    "blocking_rules to this method"
                )
        rules = to_blocking_rules(blocking_rules)
        exprs = list(dict.fromkeys(e for rule in rules for e in rule.expressions))
        columns = sorted({c for e in exprs for c in parse(e).columns})
        check_columns(linker._data, columns, used_by=f"the blocking rules of {what}")
        linker._record_table().ensure_columns({e: None for e in exprs})
        return rules

    def count_comparisons_from_blocking_rules(self, blocking_rules=None, **kwargs) -> list[dict]:
        """Splink's per-rule marginal and cumulative counts, exact (``record_sample_proportion``
        is accepted and ignored: nothing is sampled). ``blocking_rules`` defaults to the
        model's prediction rules.

        >>> import gpulink as gl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> r = linker.blocking_analysis.count_comparisons_from_blocking_rules(
        ...     [gl.block_on("surname"), gl.block_on("dob")])
        >>> r[-1]["cumulative_comparison_count"] >= r[0]["marginal_comparison_count"]
        True
        """
        from gpulink.blocking_analysis import count_comparisons_from_blocking_rules

        linker = self._linker
        kwargs.pop("record_sample_proportion", None)
        rules = self._rules(blocking_rules, "count_comparisons_from_blocking_rules")
        return count_comparisons_from_blocking_rules(
            linker._record_table(), blocking_rules=rules, link_type=linker.settings.link_type,
            **kwargs,
        )  # fmt: skip

    def chart_comparisons_from_blocking_rules(
        self, blocking_rules=None, *, record_sample_proportion: float = 1.0
    ):
        """Splink 5's chart of the pairs each rule adds to those of the rules before it, over
        the linker's records (see :func:`gpulink.blocking_analysis.chart_comparisons_from_blocking_rules`;
        its data are Splink's records, exact). ``blocking_rules`` defaults to the model's
        prediction rules; ``record_sample_proportion`` is accepted and ignored.

        >>> import gpulink as gl
        >>> from gpulink.datasets import synthetic_people
        >>> from gpulink.visualisations import chart_records
        >>> s = gl.SettingsCreator("dedupe_only", [],
        ...     blocking_rules_to_generate_predictions=[gl.block_on("surname"), gl.block_on("dob")])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> chart = linker.blocking_analysis.chart_comparisons_from_blocking_rules()
        >>> [r["blocking_rule"] for r in chart_records(chart)]
        ['l."surname" = r."surname"', 'l."dob" = r."dob"']
        """
        from gpulink.visualisations import (
            blocking_rule_comparisons_chart,
            blocking_rule_comparisons_records,
            require_altair,
        )

        require_altair()
        records = self.count_comparisons_from_blocking_rules(blocking_rules)
        return blocking_rule_comparisons_chart(blocking_rule_comparisons_records(records))

    def n_largest_blocks(self, blocking_rule, *, n_largest: int = 5) -> LinkResult:
        """Splink 5's ``n_largest_blocks`` over the linker's records: the key values of the
        ``n_largest`` blocks with most pre-filter pairs (columns ``key_0, ..., count_l, count_r,
        block_count``, largest first; see :func:`gpulink.blocking_analysis.n_largest_blocks`,
        which also says how ties are ordered). Returns a :class:`~gpulink.results.LinkResult`
        (``as_pandas_dataframe()``, as Splink's ``SplinkDataFrame``).

        >>> import gpulink as gl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [])
        >>> linker = gl.Linker(synthetic_people(200, seed=3), s, backend="cpu")
        >>> blocks = linker.blocking_analysis.n_largest_blocks(gl.block_on("surname"), n_largest=3)
        >>> list(blocks.as_pandas_dataframe().columns)
        ['key_0', 'count_l', 'count_r', 'block_count']
        """
        from gpulink.blocking_analysis import check_n_largest, n_largest_blocks

        linker = self._linker
        n_largest = check_n_largest(n_largest)
        (rule,) = self._rules([blocking_rule], "n_largest_blocks")
        frame = n_largest_blocks(
            linker._record_table(),
            blocking_rule=rule,
            link_type=linker.settings.link_type,
            n_largest=n_largest,
        )
        return LinkResult(pa.Table.from_pandas(frame, preserve_index=False))
