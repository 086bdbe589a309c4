"""The built-in demo: synthetic people linked end to end, scored against the truth.

>>> summary = run_demo(n_records=2_000, seed=1, backend="cpu", quiet=True)
>>> 0.5 < summary["pairwise"]["f1"] <= 1
True
"""

from __future__ import annotations

import numbers
import time

from gpulink.errors import InputError

# The fewest records the demo trains on for every seed tried (0-999). Below it some seeds give a
# training rule no pairs; below about 10 most do, and 0 or 1 record cannot be linked at all.
MIN_DEMO_RECORDS = 50


def demo_settings(cl, block_on, SettingsCreator):  # noqa: N803 (Splink's own name)
    """The demo model, written against Splink's API names (``cl``: a comparison library)."""
    return SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("first_name", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.PostcodeComparison("postcode"),
            cl.EmailComparison("email"),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("first_name", "surname"),
            block_on("surname", "dob"),
            block_on("first_name", "dob"),
            block_on("postcode", "first_name"),
            block_on("email"),
        ],
        retain_matching_columns=False,
    )


def run_demo(
    n_records: int = 100_000,
    *,
    seed: int = 1,
    backend: str = "auto",
    threshold: float = 0.9,
    quiet: bool = False,
) -> dict:
    """Generate ``n_records`` synthetic people, train, predict, cluster and report accuracy.

    ``n_records`` must be at least ``MIN_DEMO_RECORDS`` (50).

    >>> run_demo(1)
    Traceback (most recent call last):
    ...
    gpulink.errors.InputError: the demo needs at least 50 records (it trains a model on them), got 1; pass n_records >= 50 (the command line: --records 50)
    """
    if isinstance(n_records, bool) or not isinstance(n_records, numbers.Integral):
        raise InputError(f"n_records must be an integer, got {n_records!r}")
    if n_records < MIN_DEMO_RECORDS:
        raise InputError(
            f"the demo needs at least {MIN_DEMO_RECORDS} records (it trains a model on them), got "
            f"{n_records}; pass n_records >= {MIN_DEMO_RECORDS} (the command line: --records "
            f"{MIN_DEMO_RECORDS})"
        )
    import gpulink as gl
    import gpulink.comparison_library as cl
    from gpulink.datasets import synthetic_people
    from gpulink.evaluation import b_cubed, pairwise_accuracy

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    stages: dict[str, float] = {}
    t = time.perf_counter()
    people = synthetic_people(n_records, seed=seed)
    stages["generate"] = time.perf_counter() - t
    say(f"generated {people.num_rows:,} synthetic people records in {stages['generate']:.1f}s")

    settings = demo_settings(cl, gl.block_on, gl.SettingsCreator)
    linker = gl.Linker(people, settings, backend=backend, set_up_basic_logging=not quiet)
    say(f"backend: {linker.backend.name}")

    def stage(name, fn):
        t0 = time.perf_counter()
        out = fn()
        stages[name] = time.perf_counter() - t0
        say(f"  {name:<8} {stages[name]:7.2f}s")
        return out

    training = linker.training
    stage("lambda", lambda: training.estimate_probability_two_random_records_match(
        [gl.block_on("first_name", "surname", "dob")], recall=0.8))  # fmt: skip
    stage("u", lambda: training.estimate_u_using_random_sampling(max_pairs=2e6, seed=seed))
    stage("em", lambda: [
        training.estimate_parameters_using_expectation_maximisation(gl.block_on("dob")),
        training.estimate_parameters_using_expectation_maximisation(gl.block_on("email")),
    ])  # fmt: skip
    pairs = stage("predict", lambda: linker.inference.predict(threshold_match_probability=0.5))
    clusters = stage(
        "cluster",
        lambda: linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.95),
    )
    truth = people.select(["unique_id", "cluster"])
    accuracy = pairwise_accuracy(pairs.to_arrow(), truth, threshold=threshold)
    cluster_accuracy = b_cubed(clusters.to_arrow(), truth)
    stats = getattr(linker, "last_predict_stats", {})
    summary = {
        "records": people.num_rows,
        "backend": linker.backend.name,
        "stages_s": stages,
        "candidate_pairs": stats.get("candidate_pairs"),
        "pairs_kept": len(pairs),
        "pairwise": accuracy,
        "b_cubed": cluster_accuracy,
    }
    say(
        f"scored {stats.get('candidate_pairs', 0):,} pairs; kept {len(pairs):,} at p >= 0.5\n"
        f"pairwise at p >= {threshold}: precision {accuracy['precision']:.3f}, "
        f"recall {accuracy['recall']:.3f}, F1 {accuracy['f1']:.3f}\n"
        f"clusters at p >= 0.95 (B-cubed): precision {cluster_accuracy['precision']:.3f}, "
        f"recall {cluster_accuracy['recall']:.3f}"
    )
    return summary
