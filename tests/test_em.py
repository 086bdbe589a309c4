"""Tests of gpulink.em: Splink's published test oracles, recovery of a known model, and direct
parity with Splink 5 (DuckDB) EM on fake_1000, iteration by iteration."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from gpulink.em import (
    TermFrequencySpec,
    blocking_adjusted_lambda,
    combine_em_sessions,
    default_m_values,
    default_u_values,
    expectation_maximisation,
    expectation_maximisation_tf,
    lambda_from_em_sessions,
    level_match_weights,
    m_from_label_counts,
    match_probability_from_weight,
    probability_two_random_records_match_from_counts,
    total_possible_comparisons,
    u_from_counts,
)
from gpulink.errors import GpulinkError, InputError, SettingsError

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# --------------------------------------------------------------------------------------------
# Splink's published oracles
# --------------------------------------------------------------------------------------------

# The Splink 2 EM test (tests/test_expectation_and_max.py, answers derived in
# tests/expectation_maximisation_test_answers.xlsx): seven records, blocked on mob and surname,
# give eight pairs. Their gammas (mob: 2 levels, surname: exact / first-3-chars / else):
#   (1,2) (5,6) mob=1 surname=2; (1,3) (2,3) mob=1 surname=1; (4,5) (4,6) mob=0 surname=2;
#   (5,7) (6,7) mob=1 surname=0.
SPLINK2_PATTERNS = np.array([[1, 2], [1, 1], [0, 2], [1, 0]], dtype=np.int8)
SPLINK2_COUNTS = np.array([2, 2, 2, 2])
SPLINK2_M = [[0.1, 0.9], [0.1, 0.2, 0.7]]
SPLINK2_U = [[0.8, 0.2], [0.5, 0.25, 0.25]]


def test_splink_oracle_expectation_step():
    weights = [level_match_weights(np.array(m), np.array(u)) for m, u in zip(SPLINK2_M, SPLINK2_U)]
    prior = math.log2(0.4 / 0.6)
    w = prior + weights[0][SPLINK2_PATTERNS[:, 0]] + weights[1][SPLINK2_PATTERNS[:, 1]]
    p = match_probability_from_weight(w)
    assert p == pytest.approx([0.893617021, 0.705882353, 0.189189189, 0.375])


def test_splink_oracle_two_maximisation_steps():
    r = expectation_maximisation(
        SPLINK2_PATTERNS,
        SPLINK2_COUNTS,
        SPLINK2_M,
        SPLINK2_U,
        0.4,
        fix_u=False,
        max_iterations=2,
        em_convergence=0.0,
    )
    first, second = r.iterations
    assert first.lambda_ == pytest.approx(0.540922141)
    assert first.m[0] == pytest.approx([0.087438272, 0.912561728])
    assert first.u[0] == pytest.approx([0.441543191, 0.558456809])
    assert first.m[1] == pytest.approx([0.173315146, 0.326240275, 0.500444578])
    assert first.u[1] == pytest.approx([0.340356209, 0.160167628, 0.499476163])
    assert second.lambda_ == pytest.approx(0.534993426)
    assert second.m[0] == pytest.approx([0.088546179, 0.911453821])
    assert second.u[0] == pytest.approx([0.435753788, 0.564246212])
    assert second.m[1] == pytest.approx([0.231340865, 0.372351177, 0.396307958])
    assert second.u[1] == pytest.approx([0.27146747, 0.109234086, 0.619298443])
    assert not r.converged and r.n_iterations == 2


def test_splink_oracle_u_from_random_sampling():
    # tests/test_u_train.py: six names, dedupe, all 15 pairs sampled: Amanda/Amanda exact,
    # Robin/Robyn within levenshtein 2, 13 others.
    denom = total_possible_comparisons([6], "dedupe_only")
    assert denom == 15
    u = u_from_counts(np.array([[2], [1], [0]]), [1, 1, 13], [3])[0]
    assert u.tolist() == [13 / 15, 1 / 15, 1 / 15]
    # multilink (link_only over 4 tables of 2,3,4,7 rows): David x3 exact, John/Jon.
    denom = total_possible_comparisons([2, 3, 4, 7], "link_only")
    assert denom == 2 * 3 + 2 * 4 + 2 * 7 + 3 * 4 + 3 * 7 + 4 * 7
    u = u_from_counts(np.array([[2], [1], [0]]), [3, 1, denom - 4], [3])[0]
    assert u.tolist() == [(denom - 4) / denom, 1 / denom, 3 / denom]
    denom = total_possible_comparisons([2, 3, 4, 7], "link_and_dedupe")
    assert denom == (2 + 3 + 4 + 7) * (2 + 3 + 4 + 7 - 1) // 2
    u = u_from_counts(np.array([[2], [1], [0]]), [9, 1, denom - 10], [3])[0]
    assert u[2] == 9 / denom and u[0] == (denom - 10) / denom


def test_u_level_never_sampled_is_not_observed_and_nulls_do_not_count():
    u = u_from_counts(np.array([[0], [-1], [1]]), [10, 50, 0], [3])[0]
    assert u[0] == 1.0 and np.isnan(u[1]) and np.isnan(u[2])


def test_m_from_labels():
    m = m_from_label_counts(np.array([[1, -1], [0, 2], [1, 2]]), [3, 1, 6], [2, 3])
    assert m[0].tolist() == [0.1, 0.9]
    assert np.isnan(m[1][0]) and np.isnan(m[1][1]) and m[1][2] == 1.0


@pytest.mark.parametrize(
    "matched, rows, link_type, recall, expected",
    [
        (4, [6], "dedupe_only", 1.0, 4 / 15),
        (4, [6], "dedupe_only", 0.9, 4 / 15 / 0.9),
        (2, [2, 4], "link_only", 1.0, 2 / 8),
        (3, [3, 3], "link_and_dedupe", 1.0, 3 / 15),
        (6, [3, 4, 5, 7], "link_only", 1.0, 6 / 131),
        (10, [3, 4, 5, 7], "link_and_dedupe", 1.0, 10 / 171),
        (131, [3, 4, 5, 7], "link_only", 1.0, 1.0),
    ],
)
def test_splink_oracle_probability_two_random_records_match(
    matched, rows, link_type, recall, expected
):
    # tests/test_estimate_prob_two_rr_match.py
    total = total_possible_comparisons(rows, link_type)
    prob = probability_two_random_records_match_from_counts(matched, total, recall)
    assert prob == pytest.approx(expected)


def test_probability_two_random_records_match_errors_and_warnings(caplog):
    total = total_possible_comparisons([6], "dedupe_only")
    with pytest.raises(SettingsError, match="recall must be at least"):
        probability_two_random_records_match_from_counts(15, total, 0.8)
    with pytest.raises(SettingsError):
        probability_two_random_records_match_from_counts(6, total, 6 / 15 - 1e-6)
    assert probability_two_random_records_match_from_counts(6, total, 6 / 15) <= 1
    for bad in (0.0, 1.2, -0.4):
        with pytest.raises(SettingsError, match="recall"):
            probability_two_random_records_match_from_counts(1, total, bad)
    with caplog.at_level(logging.WARNING, logger="gpulink"):
        assert probability_two_random_records_match_from_counts(0, total, 0.7) == 0
        assert "WARNING" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gpulink"):
        assert probability_two_random_records_match_from_counts(15, total, 1.0) == 1
        assert "WARNING" in caplog.text
    with pytest.raises(InputError):
        total_possible_comparisons([5], "link_only")
    with pytest.raises(InputError):
        total_possible_comparisons([5, 5], "dedupe_only")
    with pytest.raises(SettingsError):
        total_possible_comparisons([5], "link")


def test_default_parameters_match_splink():
    from splink.internals.comparison_level import _default_m_values, _default_u_values

    for n in (2, 3, 4, 6):
        assert default_m_values(n) == pytest.approx(_default_m_values(n), rel=1e-15)
        assert default_u_values(n) == pytest.approx(_default_u_values(n), rel=1e-15)


# --------------------------------------------------------------------------------------------
# Semantics derived from Splink's source
# --------------------------------------------------------------------------------------------


def test_not_observed_level_is_nan_and_reads_as_one_in_a_million():
    # Level 1 of comparison 0 never occurs: Splink records "level not observed" and reads it as
    # 1e-6 in the next expectation step and in the convergence test.
    patterns = np.array([[2, 1], [0, 1], [0, 0], [-1, 0]], dtype=np.int8)
    counts = np.array([30, 5, 60, 5])
    m = [[0.1, 0.3, 0.6], [0.2, 0.8]]
    u = [[0.8, 0.15, 0.05], [0.7, 0.3]]
    r = expectation_maximisation(patterns, counts, m, u, 0.3, max_iterations=2, em_convergence=0)
    first, second = r.iterations
    assert np.isnan(first.m[0][1])
    assert first.max_change == pytest.approx(0.3 - 1e-6, abs=0.2)  # m went 0.3 -> 1e-6
    # redo iteration 2 by hand with m = 1e-6 for that level
    m_eff = [np.where(np.isnan(first.m[0]), 1e-6, first.m[0]), first.m[1]]
    w = math.log2(first.lambda_ / (1 - first.lambda_)) + np.array(
        [
            level_match_weights(m_eff[0], np.array(u[0]))[[2, 0, 0]].tolist() + [0.0],
            level_match_weights(m_eff[1], np.array(u[1]))[[1, 1, 0, 0]].tolist(),
        ]
    ).sum(axis=0)
    p = match_probability_from_weight(w)
    pc = p * counts
    expected_m1 = np.array([pc[2] + pc[3], pc[0] + pc[1]]) / pc.sum()
    assert second.m[1] == pytest.approx(expected_m1, rel=1e-12)
    assert second.lambda_ == pytest.approx(pc.sum() / counts.sum(), rel=1e-12)


def test_inactive_comparisons_are_left_out_and_unchanged():
    patterns = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=np.int8)
    counts = np.array([100, 20, 30, 850])
    m = [[0.2, 0.8], [0.3, 0.7]]
    u = [[0.9, 0.1], [0.95, 0.05]]
    full = expectation_maximisation(patterns[:, :1], counts, m[:1], u[:1], 0.1)
    part = expectation_maximisation(patterns, counts, m, u, 0.1, active=[True, False])
    assert part.m[0] == pytest.approx(full.m[0], rel=1e-13)
    assert part.m[1].tolist() == m[1] and part.trained_m()[1] is None
    assert part.lambda_ == pytest.approx(full.lambda_, rel=1e-13)
    assert part.n_iterations == full.n_iterations


def test_fixed_lambda_and_per_level_fixed_m():
    patterns = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], dtype=np.int8)
    counts = np.array([100, 20, 30, 850])
    m = [[0.2, 0.8], [0.3, 0.7]]
    u = [[0.9, 0.1], [0.95, 0.05]]
    r = expectation_maximisation(
        patterns, counts, m, u, 0.1, fix_lambda=True, fix_m=[[True, True], [False, False]]
    )
    assert r.lambda_ == 0.1 and r.m[0].tolist() == m[0] and r.m[1].tolist() != m[1]
    with pytest.raises(SettingsError, match="fix both"):
        expectation_maximisation(patterns, counts, m, u, 0.1, fix_m=True, fix_u=True)


def test_input_errors():
    m, u = [[0.2, 0.8]], [[0.9, 0.1]]
    with pytest.raises(InputError, match="no record pairs"):
        expectation_maximisation(np.zeros((0, 1), np.int8), [], m, u, 0.1)
    with pytest.raises(InputError, match="gamma values outside"):
        expectation_maximisation(np.array([[2]], np.int8), [1], m, u, 0.1)
    with pytest.raises(InputError, match="counts"):
        expectation_maximisation(np.array([[1]], np.int8), [1, 2], m, u, 0.1)
    with pytest.raises(GpulinkError):
        expectation_maximisation(np.array([[1]], np.int8), [1], [[0.2, 1.8]], u, 0.1)


def test_combine_sessions_and_lambda_helpers():
    trained = [
        [np.array([0.1, 0.9]), None],
        [np.array([0.3, np.nan]), np.array([0.5, 0.5])],
        [np.array([0.2, 0.7]), None],
    ]
    out = combine_em_sessions(trained, [np.array([0.4, 0.6]), np.array([0.25, 0.75])])
    assert out[0].tolist() == [0.2, 0.8]  # median of 3, and of the 2 numeric values
    assert out[1].tolist() == [0.5, 0.5]
    lam = 0.001
    adjusted = blocking_adjusted_lambda(lam, [40.0, 2.5])
    assert adjusted == pytest.approx(100 * lam / (1 - lam) / (1 + 100 * lam / (1 - lam)))
    assert lambda_from_em_sessions([adjusted], [[40.0, 2.5]]) == pytest.approx(lam)


# --------------------------------------------------------------------------------------------
# Recovery of a known Fellegi-Sunter model
# --------------------------------------------------------------------------------------------

TRUE_M = [
    np.array([0.05, 0.15, 0.8]),
    np.array([0.1, 0.9]),
    np.array([0.2, 0.3, 0.5]),
    np.array([0.05, 0.95]),
]
TRUE_U = [
    np.array([0.9, 0.08, 0.02]),
    np.array([0.7, 0.3]),
    np.array([0.85, 0.1, 0.05]),
    np.array([0.99, 0.01]),
]
TRUE_LAMBDA = 0.04
NULL_RATE = [0.1, 0.0, 0.05, 0.2]


def _model_pattern_probabilities():
    """All gamma patterns (nulls included, missing at random) with P(pattern) under the model."""
    levels = [list(range(-1, len(m))) for m in TRUE_M]
    patterns = np.array(list(itertools.product(*levels)), dtype=np.int8)
    pm = np.ones(len(patterns))
    pu = np.ones(len(patterns))
    for c, (m, u, q) in enumerate(zip(TRUE_M, TRUE_U, NULL_RATE)):
        g = patterns[:, c].astype(int)
        pm *= np.where(g < 0, q, (1 - q) * m[np.maximum(g, 0)])
        pu *= np.where(g < 0, q, (1 - q) * u[np.maximum(g, 0)])
    return patterns, TRUE_LAMBDA * pm + (1 - TRUE_LAMBDA) * pu


START_M = [
    np.array([0.2, 0.2, 0.6]),
    np.array([0.3, 0.7]),
    np.array([0.3, 0.3, 0.4]),
    np.array([0.2, 0.8]),
]
START_U = [
    np.array([0.6, 0.3, 0.1]),
    np.array([0.5, 0.5]),
    np.array([0.6, 0.3, 0.1]),
    np.array([0.9, 0.1]),
]


def test_em_recovers_known_parameters_from_expected_counts():
    # With the exact expected counts the true parameters are a fixed point of EM (the model is
    # identified: four conditionally independent indicators), so EM must converge to them.
    patterns, prob = _model_pattern_probabilities()
    r = expectation_maximisation(
        patterns,
        1e9 * prob,
        START_M,
        START_U,
        0.2,
        fix_u=False,
        max_iterations=2000,
        em_convergence=1e-11,
    )
    assert r.converged
    for c in range(4):
        assert r.m[c] == pytest.approx(TRUE_M[c], abs=1e-6)
        assert r.u[c] == pytest.approx(TRUE_U[c], abs=1e-6)
    assert r.lambda_ == pytest.approx(TRUE_LAMBDA, abs=1e-7)


def test_em_recovers_known_parameters_from_a_sample():
    # 4 million sampled pairs, so 160k matches: the standard error of an m is at most
    # sqrt(0.25 / 160e3) ~ 0.0013 (plus the latent-class inflation, < 2x here), so 0.01 is
    # more than 3.5 SE even inflated; u rests on 3.84M non-matches and is much tighter.
    patterns, prob = _model_pattern_probabilities()
    counts = np.random.default_rng(7).multinomial(4_000_000, prob)
    r = expectation_maximisation(
        patterns,
        counts,
        START_M,
        START_U,
        0.2,
        fix_u=False,
        max_iterations=500,
        em_convergence=1e-8,
    )
    for c in range(4):
        assert r.m[c] == pytest.approx(TRUE_M[c], abs=0.01)
        assert r.u[c] == pytest.approx(TRUE_U[c], abs=0.003)
    assert r.lambda_ == pytest.approx(TRUE_LAMBDA, abs=0.002)
    # and with u fixed at the truth (Splink's default use), m is recovered as well
    r = expectation_maximisation(patterns, counts, START_M, TRUE_U, 0.2, max_iterations=500)
    for c in range(4):
        assert r.m[c] == pytest.approx(TRUE_M[c], abs=0.01)


# --------------------------------------------------------------------------------------------
# Direct parity with Splink 5 (DuckDB)
# --------------------------------------------------------------------------------------------

COLUMNS = ["first_name", "surname", "dob", "city", "email"]


def _splink_params(cms, names):
    """m, u (by gamma) of ``names`` in a Splink CoreModelSettings, and its λ."""
    m, u = {}, {}
    for cc in cms.comparisons:
        levels = [lv for lv in cc.comparison_levels if not lv.is_null_level]
        n = len(levels)
        mc, uc = np.zeros(n), np.zeros(n)
        for lv in levels:
            mc[lv.comparison_vector_value] = lv.m_probability
            uc[lv.comparison_vector_value] = lv.u_probability
        m[cc.output_column_name], u[cc.output_column_name] = mc, uc
    return m, u, cms.probability_two_random_records_match


def _splink_linker(tf: bool):
    pd = pytest.importorskip("pandas")
    splink = pytest.importorskip("splink")
    import splink.comparison_library as cl

    csv = DATA / "fake_1000.csv"
    if not csv.exists():
        pytest.skip(f"reference data {csv} is absent (shared/data is not checked out)")
    df = pd.read_csv(csv)
    # Start values deliberately far from the answer so that EM takes several iterations.
    starts = {
        "first_name": ([0.7, 0.3], [0.02, 0.98]),
        "surname": ([0.6, 0.4], [0.01, 0.99]),
        "dob": ([0.9, 0.1], [0.001, 0.999]),
        "city": ([0.5, 0.5], [0.1, 0.9]),
        "email": ([0.8, 0.2], [0.005, 0.995]),
    }
    comparisons = [
        cl.ExactMatch(c).configure(
            m_probabilities=starts[c][0],
            u_probabilities=starts[c][1],
            term_frequency_adjustments=tf and c in ("first_name", "surname"),
        )
        for c in COLUMNS
    ]
    settings = splink.SettingsCreator(
        link_type="dedupe_only",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[splink.block_on("dob")],
        retain_intermediate_calculation_columns=True,
        probability_two_random_records_match=0.002,
        max_iterations=40,
        em_convergence=1e-6,
    )
    db = splink.DuckDBAPI()
    return splink.Linker(db.register(df), settings, log_level=logging.ERROR)


@pytest.fixture(scope="module")
def splink_session():
    """Splink's comparison vectors over the pairs of block_on('dob') and its EM history."""
    linker = _splink_linker(tf=False)
    from splink import block_on

    pred = linker.inference.predict().as_pandas_dataframe()  # the pairs of block_on('dob')
    gammas = pred[[f"gamma_{c}" for c in COLUMNS]].to_numpy(np.int8)
    patterns, counts = np.unique(gammas, axis=0, return_counts=True)
    results = {}
    for fix_u in (True, False):
        linker = _splink_linker(tf=False)
        session = linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("dob"), estimate_without_term_frequencies=True, fix_u_probabilities=fix_u
        )
        results[fix_u] = session._core_model_settings_history
    return patterns, counts, results


@pytest.mark.parametrize("fix_u", [True, False])
def test_parity_with_splink_em_on_pattern_counts(splink_session, fix_u):
    patterns, counts, results = splink_session
    history = results[fix_u]
    active_names = [cc.output_column_name for cc in history[0].comparisons]
    assert "dob" not in active_names  # Splink left the blocking column's comparison out
    m0, u0, lam0 = _splink_params(history[0], active_names)
    m_start = [m0.get(c, np.array([0.1, 0.9])) for c in COLUMNS]
    u_start = [u0.get(c, np.array([0.9, 0.1])) for c in COLUMNS]
    r = expectation_maximisation(
        patterns,
        counts,
        m_start,
        u_start,
        lam0,
        active=[c in active_names for c in COLUMNS],
        fix_u=fix_u,
        max_iterations=40,
        em_convergence=1e-6,
    )
    assert r.n_iterations == len(history) - 1 > 3
    for it, cms in zip(r.iterations, history[1:]):
        m_s, u_s, lam_s = _splink_params(cms, active_names)
        assert it.lambda_ == pytest.approx(lam_s, abs=1e-9)
        for c, name in enumerate(COLUMNS):
            if name in active_names:
                assert it.m[c] == pytest.approx(m_s[name], abs=1e-9)
                assert it.u[c] == pytest.approx(u_s[name], abs=1e-9)
    assert r.converged == (r.n_iterations < 40)


def test_parity_with_splink_em_with_term_frequencies():
    from splink import block_on

    linker = _splink_linker(tf=True)
    pred = linker.inference.predict().as_pandas_dataframe()
    gammas = pred[[f"gamma_{c}" for c in COLUMNS]].to_numpy(np.int8)
    tf = np.full(gammas.shape, np.nan)
    specs = [None] * len(COLUMNS)
    for c, name in enumerate(COLUMNS):
        if name in ("first_name", "surname"):
            tf_l = pred[f"tf_{name}_l"].to_numpy(float)
            tf_r = pred[f"tf_{name}_r"].to_numpy(float)
            tf[:, c] = np.fmax(tf_l, tf_r)  # max of the non-null ones, NaN when both null
            specs[c] = TermFrequencySpec.single_level(2, 1)
    linker = _splink_linker(tf=True)
    session = linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob"), estimate_without_term_frequencies=False, fix_u_probabilities=False
    )
    history = session._core_model_settings_history
    names = [cc.output_column_name for cc in history[0].comparisons]
    m0, u0, lam0 = _splink_params(history[0], names)
    r = expectation_maximisation_tf(
        gammas,
        tf,
        [m0.get(c, np.array([0.1, 0.9])) for c in COLUMNS],
        [u0.get(c, np.array([0.9, 0.1])) for c in COLUMNS],
        lam0,
        tf_specs=specs,
        active=[c in names for c in COLUMNS],
        fix_u=False,
        max_iterations=40,
        em_convergence=1e-6,
    )
    assert r.n_iterations == len(history) - 1 > 3
    m_s, u_s, lam_s = _splink_params(history[-1], names)
    assert r.lambda_ == pytest.approx(lam_s, abs=1e-9)
    for c, name in enumerate(COLUMNS):
        if name in names:
            assert r.m[c] == pytest.approx(m_s[name], abs=1e-9)
            assert r.u[c] == pytest.approx(u_s[name], abs=1e-9)
    # and the TF terms matter: without them the answer is different
    plain = expectation_maximisation_tf(
        gammas,
        tf,
        [m0.get(c, np.array([0.1, 0.9])) for c in COLUMNS],
        [u0.get(c, np.array([0.9, 0.1])) for c in COLUMNS],
        lam0,
        tf_specs=[None] * 5,
        active=[c in names for c in COLUMNS],
        fix_u=False,
        max_iterations=40,
        em_convergence=1e-6,
    )
    assert abs(plain.lambda_ - lam_s) > 1e-4


def test_parity_with_splink_median_over_sessions():
    from splink import block_on

    linker = _splink_linker(tf=False)
    before = _splink_params(linker._settings_obj.core_model_settings, COLUMNS)
    sessions = []
    for rule in ("dob", "surname", "city"):
        s = linker.training.estimate_parameters_using_expectation_maximisation(
            block_on(rule), estimate_without_term_frequencies=True
        )
        final = s._core_model_settings_history[-1]
        m_s, _, _ = _splink_params(final, [cc.output_column_name for cc in final.comparisons])
        sessions.append([m_s.get(c) for c in COLUMNS])
    combined = combine_em_sessions(sessions, [before[0][c] for c in COLUMNS])
    after = _splink_params(linker._settings_obj.core_model_settings, COLUMNS)
    for c, name in enumerate(COLUMNS):
        assert combined[c] == pytest.approx(after[0][name], abs=1e-12)
