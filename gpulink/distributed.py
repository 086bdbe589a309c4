"""Scale-out on Dask: score the blocking plan's pair-index space as balanced ranges on a cluster.

The client encodes the records once and builds the blocking plan; what the kernels need (the
packed columns, the comparison program, the weight tables, the plan arrays, and the few record
columns the output shows) is plain numpy/Arrow, scattered to every worker once. The pair-index
space is cut into equal ranges, not blocks, so one huge block never stalls a worker; each task
scores its range with the same kernels as a single-process run, so the concatenated parts are the
single-process result, row for row. With ``output_dir`` each task writes its part atomically and a
re-run skips the parts already there.

>>> from distributed import Client, LocalCluster               # doctest: +SKIP
>>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))  # doctest: +SKIP
>>> pairs = predict_distributed(linker, client, threshold_match_probability=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gpulink.blocking import BlockingPlan, prediction_rules, to_blocking_rules
from gpulink.errors import InputError, SettingsError
from gpulink.predict import (
    DEFAULT_CHUNK_PAIRS,
    ScoredPairs,
    Scorer,
    blocking_rule_columns,
    concat_scored,
    keeps_gammas,
    match_probability,
    pairs_table,
    threshold_to_weight,
)
from gpulink.results import LinkResult, write_parquet_atomically

logger = logging.getLogger("gpulink")

#: Largest pair-index range one task scores by default (it scores it in bounded chunks).
DEFAULT_PART_PAIRS = 1 << 24
#: Tasks per worker thread by default, so that a slow worker never holds up the end.
PARTS_PER_THREAD = 4
MANIFEST = "_gpulink_manifest.json"
EDGES_DIR = "_edges"  # pyarrow.dataset ignores names starting with "_": readers see only pairs


# --------------------------------------------------------------------------------------------
# What the workers get: a pickleable payload and a scorer rebuilt from it once per worker
# --------------------------------------------------------------------------------------------


@dataclass
class ScoringPayload:
    """Everything a worker needs to score ranges of one plan (numpy, Arrow, the model)."""

    token: str
    settings: object  # gpulink.settings.Settings (pickleable, holds no data)
    program: object
    columns: list
    packed: object
    prog: object
    weights: object
    scratch_ints: int
    plan: BlockingPlan
    unique_id: pa.Array
    source_dataset: pa.Array | None
    data: pa.Table  # only the raw columns the output retains


class _OutputColumns:
    """The RecordTable attributes :func:`gpulink.predict.pairs_table` reads."""

    def __init__(self, unique_id, source_dataset, data):
        self.unique_id = unique_id
        self.source_dataset = source_dataset
        self.data = data


class RemoteScorer(Scorer):
    """A :class:`~gpulink.predict.Scorer` rebuilt from a :class:`ScoringPayload` on a worker:
    the same kernels and arrays, without the record table or the input data."""

    def __init__(self, payload: ScoringPayload):  # noqa: D107 - no super(): nothing to encode
        self.settings = payload.settings
        self.program = payload.program
        self.columns = payload.columns
        self.packed = payload.packed
        self.prog = payload.prog
        self.weights = payload.weights
        self.scratch_ints = payload.scratch_ints
        self.rules = []
        self.table = _OutputColumns(payload.unique_id, payload.source_dataset, payload.data)
        self._plan = payload.plan

    def plan(self):
        return self._plan


_WORKER_SCORERS: dict[str, RemoteScorer] = {}
_WORKER_CACHE_SIZE = 4


def worker_scorer(payload: ScoringPayload) -> RemoteScorer:
    """The scorer of ``payload`` in this process, built on first use and cached by token (the
    kernels compile, or load from Numba's cache, once per worker process)."""
    scorer = _WORKER_SCORERS.get(payload.token)
    if scorer is None:
        while len(_WORKER_SCORERS) >= _WORKER_CACHE_SIZE:
            _WORKER_SCORERS.pop(next(iter(_WORKER_SCORERS)))
        scorer = _WORKER_SCORERS[payload.token] = RemoteScorer(payload)
    return scorer


def _retained_raw_columns(scorer: Scorer) -> list[str]:
    """Raw input columns :func:`pairs_table` may copy into the output (a superset is fine)."""
    from gpulink.expressions import parse

    settings = scorer.settings
    data = scorer.table.data
    wanted: list[str] = []
    if settings.retain_matching_columns:
        for expr in list(scorer.program.columns) + list(settings.tf_columns()):
            wanted.extend(parse(expr).columns)
        wanted.extend(blocking_rule_columns(settings))
    wanted.extend(settings.retained_input_columns(data.column_names))
    seen: list[str] = []
    for raw in wanted:
        if raw in data.column_names and raw not in seen:
            seen.append(raw)
    return seen


def make_payload(scorer: Scorer, plan: BlockingPlan) -> ScoringPayload:
    """The pickleable payload of a prepared scorer and its plan (no Linker, no client)."""
    table = scorer.table
    return ScoringPayload(
        token=uuid.uuid4().hex,
        settings=scorer.settings,
        program=scorer.program,
        columns=list(scorer.columns),
        packed=scorer.packed,
        prog=scorer.prog,
        weights=scorer.weights,
        scratch_ints=int(scorer.scratch_ints),
        plan=plan,
        unique_id=table.unique_id,
        source_dataset=table.source_dataset,
        data=table.data.select(_retained_raw_columns(scorer)),
    )


# --------------------------------------------------------------------------------------------
# Ranges of the pair-index space
# --------------------------------------------------------------------------------------------


def _cluster_threads(client) -> int:
    info = (
        client.scheduler_info(n_workers=-1) if _takes_n_workers(client) else client.scheduler_info()
    )
    return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))


def _takes_n_workers(client) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):  # pragma: no cover
        return False


def default_n_parts(n_candidates: int, n_threads: int) -> int:
    """Enough parts to keep every worker thread busy and each part at most
    :data:`DEFAULT_PART_PAIRS` pair indices.

    >>> default_n_parts(10**9, 8)
    60
    """
    if n_candidates <= 0:
        return 1
    by_size = math.ceil(n_candidates / DEFAULT_PART_PAIRS)
    return int(max(1, min(n_candidates, max(by_size, PARTS_PER_THREAD * n_threads))))


def split_ranges(n_candidates: int, n_parts: int) -> list[tuple[int, int]]:
    """``n_parts`` contiguous ranges of ``[0, n_candidates)`` whose sizes differ by at most one.

    >>> split_ranges(10, 3)
    [(0, 3), (3, 6), (6, 10)]
    """
    if n_parts < 1:
        raise SettingsError(f"n_parts must be a positive integer, got {n_parts}")
    return [
        (n_candidates * k // n_parts, n_candidates * (k + 1) // n_parts) for k in range(n_parts)
    ]


# --------------------------------------------------------------------------------------------
# Worker tasks (module-level so that they pickle by reference)
# --------------------------------------------------------------------------------------------


def _part_name(part: int) -> str:
    return f"part-{part:05d}.parquet"


def score_part(
    payload, p0: int, p1: int, threshold: float, keep_gammas: bool, chunk_pairs: int
) -> ScoredPairs:
    """Task: the kept pairs of pair indices ``[p0, p1)``, scored in bounded chunks."""
    scorer = worker_scorer(payload)
    return scorer.score(
        threshold,
        keep_gammas=keep_gammas,
        chunk_pairs=chunk_pairs,
        plan=scorer.plan(),
        p0=p0,
        p1=p1,
    )


def write_part(
    payload, part: int, p0: int, p1: int, threshold: float, keep_gammas: bool, chunk_pairs: int,
    output_dir: str,
) -> dict:  # fmt: skip
    """Task: score ``[p0, p1)`` and write its pairs (and its edges, for clustering) atomically.

    The pairs file is written last, so its presence means the part is complete."""
    out = Path(output_dir)
    target = out / _part_name(part)
    edges = out / EDGES_DIR / _part_name(part)
    if target.exists() and edges.exists():
        return {"part": part, "rows": pq.ParquetFile(target).metadata.num_rows, "skipped": True}
    start = time.perf_counter()
    scored = score_part(payload, p0, p1, threshold, keep_gammas, chunk_pairs)
    scorer = worker_scorer(payload)
    write_parquet_atomically(
        pa.table({"left": scored.left, "right": scored.right, "match_weight": scored.match_weight}),
        edges,
    )
    write_parquet_atomically(pairs_table(scorer, scored), target)
    return {
        "part": part, "rows": int(len(scored.left)), "skipped": False,
        "seconds": time.perf_counter() - start, "worker_pid": os.getpid(),
    }  # fmt: skip


def histogram_part(payload, p0: int, p1: int, chunk_pairs: int):
    """Task: gamma-pattern counts of pair indices ``[p0, p1)``.

    Dense models give ``("dense", index, counts)`` (mixed-radix pattern index); models with more
    than 2^20 patterns give ``("rows", patterns, counts)``."""
    from gpulink.kernels.pairs import enumerate_range_cpu, plan_arrays
    from gpulink.kernels.score import launcher

    scorer = worker_scorer(payload)
    plan = scorer.plan()
    radix = _radix(scorer.settings)
    n_patterns = int(np.prod(radix)) if len(radix) else 1
    if n_patterns > (1 << 20):
        rows, counts = [], []
        for c0 in range(p0, p1, chunk_pairs):
            left, right, _ = enumerate_range_cpu(plan, c0, min(p1, c0 + chunk_pairs))
            uniq, cnt = np.unique(scorer.gammas_of_pairs(left, right), axis=0, return_counts=True)
            rows.append(uniq)
            counts.append(cnt)
        return ("rows", *_merge_rows(rows, counts, scorer.program.n_comparisons))
    hist = np.zeros(n_patterns, np.int64)
    run = launcher("gamma_histogram_range")
    for c0 in range(p0, p1, chunk_pairs):
        c1 = min(p1, c0 + chunk_pairs)
        n_sub = int(max(1, min(numba.get_num_threads() * 2, (c1 - c0) // 4096 + 1)))
        part_hist = np.zeros((n_sub, n_patterns), np.int64)
        run(
            np.int64(c0), np.int64(c1), n_sub, radix,
            *plan_arrays(plan), *scorer.prog.arrays(), *scorer._packed_args(),
            scorer.prog.n_slots, scorer.scratch_ints, part_hist,
        )  # fmt: skip
        hist += part_hist.sum(axis=0)
    index = np.flatnonzero(hist)
    return ("dense", index, hist[index])


def _radix(settings) -> np.ndarray:
    return np.array([c.num_levels + 1 for c in settings.comparisons], dtype=np.int64)


def _merge_rows(rows, counts, n_comparisons):
    if not rows:
        return np.zeros((0, n_comparisons), np.int8), np.zeros(0, np.int64)
    all_rows = np.concatenate(rows).reshape(-1, n_comparisons)
    all_counts = np.concatenate(counts).astype(np.int64)
    if len(all_rows) == 0:
        return all_rows.astype(np.int8), all_counts
    uniq, inverse = np.unique(all_rows, axis=0, return_inverse=True)
    summed = np.zeros(len(uniq), np.int64)
    np.add.at(summed, inverse.ravel(), all_counts)
    return uniq.astype(np.int8), summed


def read_edges_part(path: str, threshold_probability: float | None):
    """Task: record indices and weights of one part's edges with match probability at or above
    ``threshold_probability`` (all of them for None)."""
    table = pq.read_table(path)
    w = table.column("match_weight").to_numpy()
    keep = (
        np.ones(len(w), bool)
        if threshold_probability is None
        else match_probability(w) >= threshold_probability
    )
    return (
        table.column("left").to_numpy()[keep],
        table.column("right").to_numpy()[keep],
        w[keep],
    )


# --------------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------------


@dataclass
class PartitionedPrediction:
    """A prediction written as a parquet dataset (``output_dir``), one part per task.

    ``parts``: the pairs files in order; reading them in order gives the single-process table.
    """

    output_dir: Path
    parts: list[Path]
    rows: int
    threshold_weight: float
    stats: dict = field(default_factory=dict)

    def to_arrow(self) -> pa.Table:
        """All parts, in order, as one Arrow table (reads the dataset)."""
        return pa.concat_tables([pq.read_table(p) for p in self.parts]).combine_chunks()

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Record indices (left, right) and match weights of every pair, in order."""
        pieces = [read_edges_part(str(_edges_path(p)), None) for p in self.parts]
        return _cat_edges(pieces)


def _edges_path(part_path: Path) -> Path:
    return part_path.parent / EDGES_DIR / part_path.name


def _cat_edges(pieces):
    if not pieces:
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)
    return tuple(np.concatenate([p[k] for p in pieces]) for k in range(3))


def _fingerprint(scorer: Scorer, plan: BlockingPlan, threshold: float, keep_gammas: bool) -> str:
    """A digest of what determines the output: model, data codes, plan, threshold."""
    h = hashlib.sha256()
    h.update(json.dumps(scorer.settings.to_dict(), sort_keys=True, default=str).encode())
    h.update(repr((threshold, keep_gammas, plan.n_candidates, plan.n_records)).encode())
    for arr in (plan.seg_start, plan.members, scorer.packed.codes):
        h.update(np.ascontiguousarray(arr).view(np.uint8).data)
    for chunk in (
        scorer.table.unique_id.cast(pa.string()).chunks
        if isinstance(scorer.table.unique_id, pa.ChunkedArray)
        else [scorer.table.unique_id.cast(pa.string())]
    ):
        for buf in chunk.buffers():
            if buf is not None:
                h.update(buf)
    return h.hexdigest()


def _prepare_output_dir(
    output_dir: Path, fingerprint: str, n_parts: int | None, n_candidates: int, n_threads: int
) -> int:
    """Check or write the manifest; the number of parts (a resumed run keeps its own)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    manifest = output_dir / MANIFEST
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if old.get("fingerprint") != fingerprint:
            raise InputError(
                f"output_dir {str(output_dir)!r} holds parts of a different prediction (another "
                "model, data or threshold); delete it or choose another output_dir"
            )
        if n_parts is not None and n_parts != old["n_parts"]:
            raise InputError(
                f"output_dir {str(output_dir)!r} was written with n_parts={old['n_parts']}; "
                f"resume with that n_parts (or None), not {n_parts}, or delete the folder"
            )
        return int(old["n_parts"])
    n_parts = n_parts or default_n_parts(n_candidates, n_threads)
    tmp = manifest.with_suffix(".tmp")
    tmp.write_text(
        json.dumps({"fingerprint": fingerprint, "n_parts": n_parts, "n_candidates": n_candidates})
    )
    os.replace(tmp, manifest)
    return n_parts


def _run_parts(client, futures, what: str) -> list:
    """Results of ``futures`` in submission order, logging progress as parts finish."""
    from distributed import as_completed

    total = len(futures)
    done = 0
    next_log = 0.1
    start = time.perf_counter()
    for _future in as_completed(futures):
        done += 1
        if done / total >= next_log or done == total:
            logger.info(
                "%s: %d/%d parts done (%.1fs)", what, done, total, time.perf_counter() - start
            )
            next_log = math.floor(done / total * 10 + 1) / 10
    return client.gather(futures)


def predict_distributed(
    linker,
    client,
    *,
    threshold_match_probability: float | None = None,
    threshold_match_weight: float | None = None,
    n_parts: int | None = None,
    output_dir: str | os.PathLike | None = None,
    collect: bool = True,
    chunk_pairs: int = DEFAULT_CHUNK_PAIRS,
    retries: int = 2,
):
    """``linker.inference.predict()`` on a Dask cluster: the same rows in the same order.

    The pair-index space is cut into ``n_parts`` equal ranges (default: enough to give each
    worker thread several, each at most :data:`DEFAULT_PART_PAIRS`), one task each. Without
    ``output_dir`` the kept pairs come back to the client. With ``output_dir`` every task writes
    ``part-NNNNN.parquet`` atomically (a re-run skips parts already written and refuses a folder
    written by another model, data or threshold); the result is read back unless
    ``collect=False``, which returns a :class:`PartitionedPrediction` instead.

    >>> from distributed import Client, LocalCluster                      # doctest: +SKIP
    >>> with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:  # doctest: +SKIP
    ...     pairs = predict_distributed(linker, client, threshold_match_probability=0.5)
    """
    from gpulink.linker import PredictionResult

    settings = linker.settings
    threshold = threshold_to_weight(threshold_match_probability, threshold_match_weight)
    keep_gammas = keeps_gammas(settings)
    start = time.perf_counter()
    scorer = linker._scorer(prediction_rules(linker.settings))
    plan = scorer.plan()
    n_threads = _cluster_threads(client)
    out = Path(output_dir) if output_dir is not None else None
    if out is not None:
        n_parts = _prepare_output_dir(
            out,
            _fingerprint(scorer, plan, threshold, keep_gammas),
            n_parts,
            plan.n_candidates,
            n_threads,
        )
    elif n_parts is None:
        n_parts = default_n_parts(plan.n_candidates, n_threads)
    ranges = split_ranges(plan.n_candidates, n_parts)
    payload = client.scatter(make_payload(scorer, plan), broadcast=True, hash=False)
    common = dict(threshold=threshold, keep_gammas=keep_gammas, chunk_pairs=int(chunk_pairs))
    if out is None:
        futures = [
            client.submit(score_part, payload, p0, p1, **common, pure=False, retries=retries)
            for p0, p1 in ranges
        ]
        scored = concat_scored(
            _run_parts(client, futures, "predict"), scorer.program.n_comparisons, keep_gammas
        )
        result = PredictionResult(pairs_table(scorer, scored), scored.left, scored.right)
        rows = len(scored.left)
    else:
        futures = [
            client.submit(
                write_part,
                payload,
                part,
                p0,
                p1,
                **common,
                output_dir=str(out),
                pure=False,
                retries=retries,
            )  # fmt: skip
            for part, (p0, p1) in enumerate(ranges)
        ]
        infos = _run_parts(client, futures, "predict")
        rows = sum(i["rows"] for i in infos)
        skipped = sum(i["skipped"] for i in infos)
        if skipped:
            logger.info("resumed: %d of %d parts were already written", skipped, len(infos))
        result = PartitionedPrediction(
            out, [out / _part_name(k) for k in range(n_parts)], rows, threshold,
            stats={"parts_skipped": skipped},
        )  # fmt: skip
        if collect:
            left, right, _ = result.edges()
            result = PredictionResult(result.to_arrow(), left, right)
    client.cancel(payload)
    seconds = time.perf_counter() - start
    linker.timings["predict"] = seconds
    linker.last_predict_stats = {
        "candidate_pairs": int(plan.n_candidates), "pairs_kept": int(rows), "seconds": seconds,
        "pairs_per_second": plan.n_candidates / seconds if seconds > 0 else float("nan"),
        "n_parts": n_parts,
    }  # fmt: skip
    logger.info(
        "Scored %d candidate pairs in %d parts on %d worker threads in %.2fs; kept %d",
        plan.n_candidates, n_parts, n_threads, seconds, rows,
    )  # fmt: skip
    return result


def pattern_counts_for_scorer(
    scorer: Scorer, client, *, n_parts: int | None = None, chunk_pairs: int = DEFAULT_CHUNK_PAIRS
):
    """``scorer.pattern_counts()`` on a Dask cluster: per-range histograms, summed.

    Same patterns and counts as the single-process call (same order for models with at most
    2^20 patterns; above that, patterns sorted)."""
    plan = scorer.plan()
    if n_parts is None:
        n_parts = default_n_parts(plan.n_candidates, _cluster_threads(client))
    payload = client.scatter(make_payload(scorer, plan), broadcast=True, hash=False)
    futures = [
        client.submit(histogram_part, payload, p0, p1, int(chunk_pairs), pure=False, retries=2)
        for p0, p1 in split_ranges(plan.n_candidates, n_parts)
    ]
    parts = _run_parts(client, futures, "pattern counts")
    client.cancel(payload)
    radix = _radix(scorer.settings)
    n_comparisons = len(radix)
    if parts and parts[0][0] == "rows":
        return _merge_rows([p[1] for p in parts], [p[2] for p in parts], n_comparisons)
    hist = np.zeros(int(np.prod(radix)) if len(radix) else 1, np.int64)
    for _kind, index, counts in parts:
        np.add.at(hist, index, counts)
    index = np.flatnonzero(hist)
    patterns = np.empty((len(index), n_comparisons), np.int8)
    rest = index.copy()
    for c in range(n_comparisons - 1, -1, -1):
        patterns[:, c] = rest % radix[c] - 1
        rest //= radix[c]
    return patterns, hist[index]


def pattern_counts_distributed(linker, client, blocking_rules=None, *, n_parts: int | None = None):
    """Gamma-pattern counts of the pairs of ``blocking_rules`` (default: the prediction rules),
    computed on the cluster; ``(patterns int8[n, n_comparisons], counts int64[n])``.

    >>> patterns, counts = pattern_counts_distributed(linker, client, gl.block_on("dob"))  # doctest: +SKIP
    """
    rules = (
        prediction_rules(linker.settings)
        if blocking_rules is None
        else to_blocking_rules(blocking_rules)
    )
    return pattern_counts_for_scorer(linker._scorer(rules), client, n_parts=n_parts)


def cluster_distributed(
    linker,
    client,
    prediction,
    threshold_match_probability: float | None = None,
    threshold_match_weight: float | None = None,
) -> LinkResult:
    """Clusters of a (possibly partitioned) prediction: the workers read and filter their parts'
    edges, the client gathers them (they fit) and runs the usual connected components.

    Same output as ``linker.clustering.cluster_pairwise_predictions_at_threshold``.
    """
    from gpulink.clustering import (
        cluster_at_threshold,
        clusters_with_records,
        threshold_probability,
    )

    table = linker._record_table()
    if isinstance(prediction, PartitionedPrediction):
        # the same probability test as clustering's, so the workers drop only what it drops
        p = threshold_probability(threshold_match_probability, threshold_match_weight)
        futures = [
            client.submit(read_edges_part, str(_edges_path(path)), p, pure=False, retries=2)
            for path in prediction.parts
        ]
        left, right, weights = _cat_edges(_run_parts(client, futures, "edges"))
        probabilities = match_probability(weights)
    else:
        left, right = prediction.left_index, prediction.right_index
        probabilities = prediction.to_arrow().column("match_probability").to_numpy()
    result = cluster_at_threshold(
        table.unique_id, left, right, probabilities,
        source_dataset=table.source_dataset if linker.settings.link_type != "dedupe_only" else None,
        threshold_match_probability=threshold_match_probability,
        threshold_match_weight=threshold_match_weight,
        unique_id_column_name=linker.settings.unique_id_column_name,
        backend=linker.backend.name,
    )  # fmt: skip
    out = clusters_with_records(result.column("cluster_id"), table.data)
    p = threshold_probability(threshold_match_probability, threshold_match_weight)
    return LinkResult(out, metadata={} if p is None else {"threshold_match_probability": p})
