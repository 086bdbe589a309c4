"""Training: λ from deterministic rules, u from random pairs, m (and u) by EM, m from labels.

Each method records its estimates per level; a level's parameter is the median of every estimate
made so far (Splink 5's rule), and each step is appended to the model's training history, which
the model JSON keeps.
"""

from __future__ import annotations

import logging
import math
import statistics
import time

import numpy as np

from gpulink import em, sampling
from gpulink.blocking import block_on, count_pairs, to_blocking_rule, to_blocking_rules
from gpulink.checks import is_integer, is_number
from gpulink.errors import InputError, SettingsError
from gpulink.expressions import parse
from gpulink.kernels.grouping import distinct_rows
from gpulink.levels import LEAF_EXACT, Leaf, Node, iter_leaves
from gpulink.settings import LEVEL_NOT_OBSERVED_TEXT

logger = logging.getLogger("gpulink")

#: Pairs u's sampling scores per kernel call (about 40 bytes each in transient index arrays).
U_PAIRS_PER_BATCH = 1 << 18


def _check_max_pairs(max_pairs) -> float:
    """``max_pairs`` as a float: a finite number, at least 1."""
    if not is_number(max_pairs) or not math.isfinite(max_pairs) or max_pairs < 1:
        raise SettingsError(
            f"max_pairs must be a finite number of at least 1 (e.g. 1e7), got {max_pairs!r}"
        )
    return float(max_pairs)


def _check_seed(seed) -> None:
    if seed is not None and (not is_integer(seed) or seed < 0):
        raise SettingsError(f"seed must be None or a non-negative integer, got {seed!r}")


def _raw_columns(expressions) -> set[str]:
    out: set[str] = set()
    for expr in expressions:
        out.update(c.lower() for c in parse(expr).columns)
    return out


def comparison_input_columns(comparison) -> set[str]:
    """The raw input columns a comparison's levels read (Splink's ``_input_columns_used...``)."""
    exprs = [
        col for lvl in comparison.levels for leaf in iter_leaves(lvl.predicate) for col in leaf.cols
    ]
    return _raw_columns(exprs)


def exact_match_columns(predicate) -> list[str] | None:
    """Columns of a level that is a conjunction of plain ``col_l = col_r`` tests, else None."""
    leaves = []

    def walk(p) -> bool:
        if isinstance(p, Leaf):
            leaves.append(p)
            return p.kind == LEAF_EXACT and parse(p.cols[0]).is_column
        return isinstance(p, Node) and p.op == "and" and all(walk(c) for c in p.children)

    if not walk(predicate) or not leaves:
        return None
    return [parse(leaf.cols[0]).columns[0].lower() for leaf in leaves]


def levels_reversing_rule(settings, rule) -> list:
    """Levels whose Bayes factors undo the selection of a training rule (Splink's choice).

    Exact-match levels on the rule's columns, preferring levels over more columns.
    """
    rule_columns = _raw_columns(rule.expressions)
    candidates = []
    for comparison in settings.comparisons:
        for level in comparison.levels:
            if level.is_null_level or level.is_else_level:
                continue
            cols = exact_match_columns(level.predicate)
            if cols:
                candidates.append((comparison, level, set(cols)))
    candidates.sort(key=lambda t: -len(t[2]))
    chosen = []
    for comparison, level, cols in candidates:
        if cols.issubset(rule_columns):
            rule_columns -= cols
            chosen.append((comparison, level))
    return chosen


class ParameterEstimates:
    """Every estimate of every level's m and u, and the medians that become the parameters.

    Estimates of a level that a step never observed are recorded but not counted: a level with
    no observed estimate keeps its configured value, else Splink's default start value.
    """

    def __init__(self):
        self._values: dict[tuple[str, int, str], list] = {}

    def add(self, settings, kind: str, per_comparison, description: str, active=None) -> None:
        """Record estimates (per comparison an array by gamma, NaN = not observed)."""
        for c, comparison in enumerate(settings.comparisons):
            values = per_comparison[c]
            if values is None or (active is not None and not active[c]):
                continue
            for level in comparison.levels:
                if level.is_null_level:
                    continue
                g = level.comparison_vector_value
                if (
                    kind == "m"
                    and level.fix_m_probability
                    or kind == "u"
                    and level.fix_u_probability
                ):
                    continue
                value = float(values[g]) if g < len(values) else float("nan")
                key = (comparison.output_column_name, g, kind)
                self._values.setdefault(key, []).append(
                    (LEVEL_NOT_OBSERVED_TEXT if np.isnan(value) else value, description)
                )
                numeric = [v for v, _ in self._values[key] if v != LEVEL_NOT_OBSERVED_TEXT]
                if not numeric:
                    # as Splink: a level no estimate observed keeps its value (or default)
                    continue
                if kind == "m":
                    level.m_probability = statistics.median(numeric)
                else:
                    level.u_probability = statistics.median(numeric)


def _current(settings, kind: str) -> list[np.ndarray]:
    """Current m or u per comparison by gamma (NaN = not observed), defaults where unset."""
    out = []
    for comparison in settings.comparisons:
        arr = np.full(comparison.num_levels, np.nan)
        for level in comparison.levels:
            if level.is_null_level:
                continue
            stored = level.m_probability if kind == "m" else level.u_probability
            if stored == LEVEL_NOT_OBSERVED_TEXT:
                continue
            arr[level.comparison_vector_value] = level.m if kind == "m" else level.u
        out.append(arr)
    return out


def _fixed_levels(settings, kind: str) -> list[np.ndarray]:
    out = []
    for comparison in settings.comparisons:
        arr = np.zeros(comparison.num_levels, bool)
        for level in comparison.levels:
            if not level.is_null_level:
                arr[level.comparison_vector_value] = (
                    level.fix_m_probability if kind == "m" else level.fix_u_probability
                )
        out.append(arr)
    return out


class LinkerTraining:
    """``linker.training``: estimate λ, u and m as in Splink."""

    def __init__(self, linker):
        self._linker = linker

    # -- λ ----------------------------------------------------------------------------------

    def estimate_probability_two_random_records_match(
        self, deterministic_matching_rules, recall: float, record_sample_proportion: float = 1.0
    ) -> None:
        """λ = (pairs admitted by the deterministic rules / recall) / all possible pairs.

        The pairs are counted exactly by a counting pass (no pair is materialised), so
        ``record_sample_proportion`` (Splink 5's option to estimate the count from a sample of
        records) is accepted and validated but never needed: the count is always exact.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> df = synthetic_people(500, seed=1)
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")])
        >>> linker = gl.Linker(df, s, backend="cpu")
        >>> linker.training.estimate_probability_two_random_records_match(
        ...     [gl.block_on("first_name", "surname", "dob")], recall=0.8)
        >>> 0 < linker.settings.probability_two_random_records_match < 1
        True
        """
        if not 0 < record_sample_proportion <= 1:
            raise SettingsError(
                f"record_sample_proportion must be in (0, 1]; got {record_sample_proportion!r}"
            )
        linker = self._linker
        rules = to_blocking_rules(
            deterministic_matching_rules
            if isinstance(deterministic_matching_rules, (list, tuple))
            else [deterministic_matching_rules]
        )
        table = linker._record_table()
        table.ensure_columns({expr: None for rule in rules for expr in rule.expressions})
        start = time.perf_counter()
        n_matched = int(count_pairs(table, rules, linker.settings.link_type).sum())
        sizes = np.bincount(table.source_codes, minlength=len(table.source_names))
        total = em.total_possible_comparisons(list(sizes), linker.settings.link_type)
        if total == 0:
            raise InputError(
                "estimate_probability_two_random_records_match needs record pairs: the input "
                f"has {table.n_records} record(s)"
                + (" across fewer than two datasets" if linker.settings.link_type == "link_only"
                   else "")
            )  # fmt: skip
        lam = em.probability_two_random_records_match_from_counts(n_matched, total, recall)
        if not 0 < lam < 1:
            rule_text = ", ".join(repr(rule.sql) for rule in rules)
            raise InputError(
                f"the deterministic rules {rule_text} admit {n_matched:,} of {total:,} possible "
                f"pairs, so the probability two random records match would be {lam:g}, which "
                "no model can use; revise the rules (count_comparisons_from_blocking_rules "
                "shows what each admits). The model was not changed"
            )
        linker.settings.probability_two_random_records_match = lam
        linker._history(
            "estimate_probability_two_random_records_match",
            rules=[r.sql for r in rules], recall=recall, pairs=n_matched,
            total_comparisons=total, probability_two_random_records_match=lam,
            seconds=time.perf_counter() - start,
        )  # fmt: skip
        logger.info(
            "Probability two random records match is estimated to be %.3g "
            "(%d deterministic matches, recall %.3g)", lam, n_matched, recall,
        )  # fmt: skip

    # -- u ----------------------------------------------------------------------------------

    def estimate_u_using_random_sampling(
        self,
        max_pairs: float = 1e6,
        seed: int | None = None,
        min_count_per_level: int | None = 100,
        num_chunks: int = 10,
    ) -> None:
        """u of every level from the pairs among a random sample of records, as Splink 5.

        About ``sqrt(2 * max_pairs)`` records are kept (seeded: a given seed always gives the
        same u) and every pair among them the link type allows is a candidate non-match. The
        right-hand records are split into ``num_chunks`` chunks; each comparison first scores
        a probe of one tenth of a chunk (1 % of ``max_pairs`` by default) and stops there if
        every non-null level was seen at least ``min_count_per_level`` times, else it starts
        again and scores chunk after chunk until that holds (``None``: all chunks, every
        pair). When the sample is the whole input and all chunks run, u is exact.

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name")])
        >>> linker = gl.Linker(synthetic_people(2000, seed=1), s, backend="cpu")
        >>> linker.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=1)
        >>> linker.settings.training_history[-1]["records_sampled"] > 400
        True
        """
        max_pairs = _check_max_pairs(max_pairs)
        _check_seed(seed)
        if num_chunks < 1:
            raise SettingsError(f"num_chunks must be at least 1, got {num_chunks!r}")
        if min_count_per_level is not None and min_count_per_level < 0:
            raise SettingsError(
                f"min_count_per_level must be None or at least 0, got {min_count_per_level!r}"
            )
        linker = self._linker
        start = time.perf_counter()
        scorer = linker._scorer([])
        table = scorer.table
        link_type = linker.settings.link_type
        rng = np.random.default_rng(seed)
        sample = sampling.sample_records(table.source_codes, link_type, max_pairs, num_chunks, rng)
        comparisons = linker.settings.comparisons
        n_levels = [c.num_levels for c in comparisons]
        counts = [np.zeros(n, np.int64) for n in n_levels]
        pairs_used = [0] * len(comparisons)

        def score(right, which):
            # in bounded batches: a chunk of a large max_pairs would not fit as index arrays
            for batch in sampling.right_batches(sample.records, right, U_PAIRS_PER_BATCH):
                left_of, right_of = sampling.pairs_with_right_in(
                    sample.records, batch, table.source_codes, link_type
                )
                gammas = scorer.gammas_of_pairs(left_of, right_of, which)
                for column, c in enumerate(which):
                    g = gammas[:, column]
                    counts[c] += np.bincount(g[g >= 0], minlength=n_levels[c])[: n_levels[c]]
                    pairs_used[c] += len(g)

        def done(c):
            return min_count_per_level is not None and counts[c].min() >= min_count_per_level

        pending = list(range(len(comparisons)))
        if num_chunks > 1 and min_count_per_level is not None:
            score(sample.probe(), pending)
            for c in pending:
                if not done(c):
                    counts[c][:] = 0
                    pairs_used[c] = 0
            pending = [c for c in pending if pairs_used[c] == 0]
        for k in range(num_chunks):
            if not pending:
                break
            score(sample.chunk(k), pending)
            pending = [c for c in pending if not done(c)]
        u = [
            em.u_from_counts(np.arange(-1, n)[:, None], np.concatenate([[0], cnt]), [n])[0]
            for n, cnt in zip(n_levels, counts)
        ]
        linker._estimates.add(linker.settings, "u", u, "estimate u by random sampling")
        linker._history(
            "estimate_u_using_random_sampling", max_pairs=int(max_pairs), seed=seed,
            min_count_per_level=min_count_per_level, num_chunks=num_chunks,
            records_sampled=int(len(sample.records)),
            pairs={c.output_column_name: int(n) for c, n in zip(comparisons, pairs_used)},
            seconds=time.perf_counter() - start,
        )  # fmt: skip
        for comparison, n, cnt in zip(comparisons, pairs_used, counts):
            logger.info(
                "u for %s from %s pairs among %s sampled records (lowest level count %s)",
                comparison.output_column_name, f"{n:,}", f"{len(sample.records):,}",
                f"{int(cnt.min()):,}",
            )  # fmt: skip

    # -- EM ---------------------------------------------------------------------------------

    def estimate_parameters_using_expectation_maximisation(
        self,
        blocking_rule,
        estimate_without_term_frequencies: bool = False,
        fix_probability_two_random_records_match: bool = False,
        fix_m_probabilities: bool = False,
        fix_u_probabilities: bool = True,
        populate_probability_two_random_records_match_from_trained_values: bool = False,
        *,
        max_pairs: float | None = None,
        record_sample_proportion: float = 0.01,
    ) -> em.EMResult:
        """One EM session over the pairs of ``blocking_rule``, as Splink's.

        Comparisons that read a column of the rule are left out of the session (logged). With
        term-frequency adjustments in the model and ``estimate_without_term_frequencies=False``
        each pair's TF enters the expectation step; otherwise EM runs on pattern counts.

        ``max_pairs`` (Splink 5): when the rule's pairs number more, a probe of
        ``record_sample_proportion`` of the records estimates how many, and EM trains on the
        pairs among a random subset of records sized to give about ``max_pairs`` pairs
        (the same subset on every run over the same records).

        >>> import gpulink as gl, gpulink.comparison_library as cl
        >>> from gpulink.datasets import synthetic_people
        >>> s = gl.SettingsCreator("dedupe_only", [cl.ExactMatch("first_name"),
        ...                                        cl.ExactMatch("surname")])
        >>> linker = gl.Linker(synthetic_people(3000, seed=1), s, backend="cpu")
        >>> linker.training.estimate_u_using_random_sampling(max_pairs=1e5, seed=1)
        >>> r = linker.training.estimate_parameters_using_expectation_maximisation(
        ...     gl.block_on("dob"), max_pairs=2000, record_sample_proportion=0.5)
        >>> linker.settings.training_history[-1]["em_sampling"]["proportion"] < 1
        True
        """
        if not 0 < record_sample_proportion <= 1:
            raise SettingsError(
                f"record_sample_proportion must be in (0, 1]; got {record_sample_proportion!r}"
            )
        if max_pairs is not None:
            max_pairs = _check_max_pairs(max_pairs)
        linker = self._linker
        settings = linker.settings
        rule = to_blocking_rule(blocking_rule)
        settings.check_has_comparisons()
        start = time.perf_counter()
        rule_columns = _raw_columns(rule.expressions)
        active = np.array(
            [not (comparison_input_columns(c) & rule_columns) for c in settings.comparisons]
        )
        left_out = [c.output_column_name for c, a in zip(settings.comparisons, active) if not a]
        if left_out:
            logger.info(
                "EM blocked on %s: comparisons %s read the rule's columns and are left out",
                rule.sql, left_out,
            )  # fmt: skip
        if not active.any():
            raise SettingsError(
                f"EM blocked on {rule.sql!r} can estimate nothing: every comparison reads a "
                "column of the rule; train with a rule on other columns"
            )
        reversing = levels_reversing_rule(settings, rule)
        lam0 = em.blocking_adjusted_lambda(
            settings.probability_two_random_records_match,
            [lvl.bayes_factor for _, lvl in reversing],
        )
        m0 = _current(settings, "m")
        u0 = _current(settings, "u")
        fix_m = True if fix_m_probabilities else _fixed_levels(settings, "m")
        fix_u = True if fix_u_probabilities else _fixed_levels(settings, "u")
        common = dict(
            active=active, fix_m=fix_m, fix_u=fix_u,
            fix_lambda=fix_probability_two_random_records_match,
            max_iterations=settings.max_iterations, em_convergence=settings.em_convergence,
            label=f"the training blocking rule {rule.sql!r}",
        )  # fmt: skip
        scorer = linker._scorer([rule])
        if max_pairs is not None:
            from gpulink.blocking import build_plan

            def count_among(mask):
                return build_plan(scorer.table, [rule], settings.link_type, records=mask)

            sample = sampling.em_record_sample(
                scorer.table.n_records,
                lambda mask: int(count_pairs(count_among(mask)).sum()),
                max_pairs,
                record_sample_proportion,
            )
            scorer.record_mask = sample.mask
            logger.info("EM sampling for %s: %s", rule.sql, sample.reason)
        else:
            sample = None
        use_tf = not estimate_without_term_frequencies and any(
            c.tf_levels() for c, a in zip(settings.comparisons, active) if a
        )
        if use_tf:
            result = self._em_with_tf(scorer, m0, u0, lam0, active, common)
        else:
            patterns, counts = _pattern_counts(linker, scorer)
            if counts.sum() == 0:
                raise InputError(
                    f"training rule {rule.sql!r} produced no record pairs; choose a rule that "
                    "pairs records (count_comparisons_from_blocking_rules helps)"
                )
            result = em.expectation_maximisation(patterns, counts, m0, u0, lam0, **common)
        description = f"EM, blocked on: {rule.sql}"
        if not fix_m_probabilities:
            linker._estimates.add(settings, "m", result.m, description, active=active)
        if not fix_u_probabilities:
            linker._estimates.add(settings, "u", result.u, description, active=active)
        # keep the levels, not their Bayes factors: as Splink, every session's λ is reversed
        # with the levels' *current* Bayes factors when λ is populated (later sessions move them)
        linker._em_sessions.append(
            (result.lambda_, [lvl for _, lvl in levels_reversing_rule(settings, rule)])
        )
        if populate_probability_two_random_records_match_from_trained_values:
            lambdas = [lam for lam, _ in linker._em_sessions]
            factors = [[lvl.bayes_factor for lvl in levels] for _, levels in linker._em_sessions]
            settings.probability_two_random_records_match = em.lambda_from_em_sessions(
                lambdas, factors
            )
        linker._history(
            "estimate_parameters_using_expectation_maximisation", blocking_rule=rule.sql,
            comparisons_left_out=left_out, iterations=result.n_iterations,
            converged=bool(result.converged), lambda_in_session=float(result.lambda_),
            with_term_frequencies=bool(use_tf), seconds=time.perf_counter() - start,
            **({} if sample is None else {"em_sampling": {
                "max_pairs": float(max_pairs), "record_sample_proportion": record_sample_proportion,
                "probe_pairs": sample.probe_pairs,
                "estimated_total_pairs": float(sample.estimated_total_pairs),
                "proportion": float(sample.proportion), "reason": sample.reason,
            }}),
        )  # fmt: skip
        return result

    def _em_with_tf(self, scorer, m0, u0, lam0, active, common):
        settings = self._linker.settings
        from gpulink.blocking import iter_blocked_pairs

        specs = []
        for comparison in settings.comparisons:
            infos = comparison.tf_levels()
            if not infos:
                specs.append(None)
                continue
            n = comparison.num_levels
            weight = np.zeros(n)
            minimum = np.zeros(n)
            exact = np.arange(n)
            for info in infos:
                g = info.comparison_vector_value
                weight[g] = info.tf_adjustment_weight
                minimum[g] = info.tf_minimum_u_value
                exact[g] = _exact_gamma(comparison, info)
            specs.append(em.TermFrequencySpec(weight, minimum, exact))
        n_levels = [c.num_levels for c in settings.comparisons]
        # Pairs with equal (key, constant) contribute identically to every EM step, so each
        # chunk is reduced to its distinct rows with counts as it streams past: memory follows
        # the distinct rows, not the (possibly billions of) training pairs.
        rows = DistinctRows()
        if scorer.backend.is_gpu:
            for chunk in iter_blocked_pairs(scorer.plan()):
                gammas = scorer.gammas_of_pairs(chunk.left, chunk.right)
                tf_values = scorer.tf_values(chunk.left, chunk.right)
                k, c = em.tf_pair_keys(gammas, tf_values, specs, n_levels, active=active)
                rows.add(k, c, np.ones(len(k)))
        else:
            for k, c in scorer.iter_tf_rows(specs, n_levels, active=active):
                rows.add(k, c, np.ones(len(k)))
        keys, constants, counts = rows.result()
        if counts.sum() == 0:
            raise InputError(
                f"{common['label']} produced no record pairs; choose a rule that pairs records"
            )
        return em.expectation_maximisation_tf_keys(
            keys, constants, m0, u0, lam0, tf_specs=specs, counts=counts, **common,
        )  # fmt: skip

    # -- m from labels ----------------------------------------------------------------------

    def estimate_m_from_pairwise_labels(self, labels) -> None:
        """m of every level from a table of record pairs known to match (Splink 5).

        ``labels`` (pandas, Arrow, polars or a parquet/CSV path) has ``unique_id_l`` and
        ``unique_id_r`` (the model's unique id column name), and for link jobs
        ``source_dataset_l`` / ``source_dataset_r``. Every row counts as a match (a
        ``clerical_match_score`` column is ignored, as Splink does); rows naming a record
        that is not in the input are dropped, as Splink's inner join drops them.

        >>> import pandas as pd, gpulink as gl, gpulink.comparison_library as cl
        >>> df = pd.DataFrame({"unique_id": [1, 2, 3], "name": ["ann", "ann", "bob"]})
        >>> linker = gl.Linker(df, gl.SettingsCreator("dedupe_only", [cl.ExactMatch("name")]),
        ...                    backend="cpu")
        >>> linker.training.estimate_m_from_pairwise_labels(
        ...     pd.DataFrame({"unique_id_l": [2, 3], "unique_id_r": [1, 1]}))
        >>> linker.settings.training_history[-1]["pairs"]
        2
        """
        import pandas as pd

        from gpulink.io import check_columns, to_arrow

        linker = self._linker
        settings = linker.settings
        start = time.perf_counter()
        table = linker._record_table()
        uid = settings.unique_id_column_name
        sd = settings.source_dataset_column_name
        linked = table.source_dataset is not None
        pairs = to_arrow(labels, what="the pairwise labels")
        needed = [f"{uid}_l", f"{uid}_r"] + ([f"{sd}_l", f"{sd}_r"] if linked else [])
        check_columns(pairs, needed, used_by="estimate_m_from_pairwise_labels")

        def keys(uids, sources):
            text = pd.Series(uids.to_pylist(), dtype=object).astype(str)
            if sources is None:
                return text
            return pd.Series(sources.to_pylist(), dtype=object).astype(str) + "-__-" + text

        index = pd.Index(keys(table.unique_id, table.source_dataset if linked else None))
        ends = []
        for side in ("l", "r"):
            sources = pairs.column(f"{sd}_{side}") if linked else None
            ends.append(index.get_indexer(keys(pairs.column(f"{uid}_{side}"), sources)))
        i, j = (np.asarray(e, np.int64) for e in ends)
        found = (i >= 0) & (j >= 0) & (i != j)
        if not found.all():
            logger.warning(
                "estimate_m_from_pairwise_labels: %d of %d label rows name records not in the "
                "input (or a record with itself) and are ignored",
                int((~found).sum()), len(found),
            )  # fmt: skip
        left, right = np.minimum(i[found], j[found]), np.maximum(i[found], j[found])
        if len(left) == 0:
            raise InputError(
                "estimate_m_from_pairwise_labels: no label row names two records of the input; "
                f"check the {uid}_l/{uid}_r values" + (f" and {sd}_l/{sd}_r" if linked else "")
            )
        scorer = linker._scorer([])
        gammas = scorer.gammas_of_pairs(left, right)
        n_levels = [c.num_levels for c in settings.comparisons]
        patterns, counts = em.count_patterns(gammas, n_levels)
        m = em.m_from_label_counts(patterns, counts, n_levels)
        linker._estimates.add(settings, "m", m, "estimate m from pairwise labels")
        linker._history(
            "estimate_m_from_pairwise_labels", pairs=int(len(left)),
            seconds=time.perf_counter() - start,
        )  # fmt: skip

    def estimate_m_from_label_column(self, label_colname: str) -> None:
        """m of every level from the pairs of records that share a label (a true cluster id)."""
        linker = self._linker
        start = time.perf_counter()
        rule = block_on(label_colname)
        scorer = linker._scorer([rule])
        patterns, counts = _pattern_counts(linker, scorer)
        n_levels = [c.num_levels for c in linker.settings.comparisons]
        m = em.m_from_label_counts(patterns, counts, n_levels)
        linker._estimates.add(linker.settings, "m", m, "estimate m from label column")
        linker._history(
            "estimate_m_from_label_column", label_colname=label_colname,
            pairs=int(counts.sum()), seconds=time.perf_counter() - start,
        )  # fmt: skip


def _distinct(keys, constants, counts):
    """Distinct (key, constant) rows (bit-exact) and their summed counts."""
    if len(keys) == 0:
        return keys, constants, counts
    k, b, n = distinct_rows(
        np.ascontiguousarray(keys, np.int64),
        np.ascontiguousarray(constants, np.float64).view(np.int64),
        np.ascontiguousarray(counts, np.float64),
    )
    return k, b.view(np.float64), n


class DistinctRows:
    """Streaming reduction of EM rows to distinct (key, constant) rows with counts."""

    def __init__(self):
        self._parts: list[tuple] = []
        self._rows = 0
        self._merged = 0

    def add(self, keys, constants, counts) -> None:
        part = _distinct(keys, constants, counts)
        self._parts.append(part)
        self._rows += len(part[0])
        if self._rows > max(2 * self._merged, 1 << 22):
            self._merge()

    def _merge(self) -> None:
        merged = _distinct(*(np.concatenate(x) for x in zip(*self._parts)))
        self._parts = [merged]
        self._rows = self._merged = len(merged[0])

    def result(self):
        if not self._parts:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        self._merge()
        return self._parts[0]


def _pattern_counts(linker, scorer):
    """Pattern counts of the scorer's blocked pairs, on the Dask cluster when there is one."""
    if linker.client is not None:
        from gpulink.distributed import pattern_counts_for_scorer

        return pattern_counts_for_scorer(scorer, linker.client)
    return scorer.pattern_counts()


def _exact_gamma(comparison, info) -> int:
    from gpulink.levels import is_single_exact_on

    target = info.column.lower()
    for level in comparison.levels:
        col = is_single_exact_on(level.predicate)
        if col is not None and parse(col).canonical.lower() == target:
            return level.comparison_vector_value
    return info.comparison_vector_value
