"""The reproduction's closed forms, each derived a second way, and its pass rule — in milliseconds, without the loop.

Every formula is checked at the generations its target asks for, so a shift of the generation count (g fits
instead of g + 1) or a slip in a constant fails here, not only in the long reproduction. The second derivations:
moments of the χ² and binomial laws from scipy, numerical integration, and the fixed points of the variance maps
the papers' processes define, iterated until they converge.
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl
import pytest
from scipy import integrate
from scipy.special import polygamma
from scipy.stats import binom, chi2

from simweb.reproduce import PAPERS_DIR, TARGETS, Z_PASS, Check, Target, _check_rows, window_error
from simweb.scenario import load_scenario

TARGET = {t.name: t for t in TARGETS}


def _checks(name: str, *overrides: str) -> tuple:
    sc = load_scenario(PAPERS_DIR / f"{name}.toml", list(overrides))
    return sc, TARGET[name].checks(sc)


def _g(check: Check) -> int:
    return int(re.search(r"g=(\d+)", check.quantity).group(1))


def _e_log_chi2_over(k: int, scale: float) -> float:
    """E[ln(X / scale)], X ~ χ²_k, by numerical integration (not through the digamma function)."""
    value, _ = integrate.quad(lambda x: math.log(x / scale) * chi2.pdf(x, k), 0, np.inf, limit=200)
    return value


@pytest.mark.parametrize("ticks", [100, 40])
def test_shumailov_mle_variance_shrinks_by_the_chi2_mean_once_per_fit(ticks):
    sc, checks = _checks("shumailov_gaussian_mle", f"run.ticks={ticks}")
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    gens = sorted({_g(c) for c in checks})
    assert gens == sorted({min(g, ticks - 1) for g in (0, 9, 49, 99)})
    per_fit = chi2(n - 1).mean() / n  # σ²_MLE / σ²_prev ~ χ²_{n−1} / n
    log_per_fit = _e_log_chi2_over(n - 1, n)
    for c in checks:
        fits = _g(c) + 1  # generation g is the (g + 1)-th fit
        want = per_fit ** fits if c.quantity.startswith("E[σ²]") else math.log(s2) + fits * log_per_fit
        assert c.formula == pytest.approx(want, rel=1e-9), c.quantity


def test_shumailov_unbiased_is_a_martingale_in_variance_and_a_random_walk_in_mean():
    sc, checks = _checks("shumailov_gaussian_unbiased")
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    log_per_fit = _e_log_chi2_over(n - 1, n - 1)
    kinds = {"E[μ²]": 0, "E[σ²]": 0, "E[ln": 0}
    for c in checks:
        fits = _g(c) + 1
        if c.quantity.startswith("E[μ²]"):  # each fit moves the mean by N(0, σ²_prev/n), E[σ²_prev] = σ²
            want = sum(s2 / n for _ in range(fits))
        elif c.quantity.startswith("E[σ²]"):
            want = 1.0
        else:
            want = math.log(s2) + fits * log_per_fit
        kinds[next(k for k in kinds if c.quantity.startswith(k))] += 1
        assert c.formula == pytest.approx(want, rel=1e-9), c.quantity
    assert kinds == {"E[μ²]": 3, "E[σ²]": 3, "E[ln": 3}


def test_gerstgrasser_accumulated_mean_error_is_a_partial_zeta_sum():
    sc, checks = _checks("gerstgrasser_accumulate")
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    assert len(checks) == 2
    for c in checks:
        fits = _g(c) + 1  # Σ_{k=1}^{t} 1/k² = π²/6 − ψ′(t + 1)
        assert c.formula == pytest.approx(s2 / n * (math.pi ** 2 / 6 - float(polygamma(1, fits + 1))), rel=1e-9)


def test_categorical_heterozygosity_loses_one_over_n_per_fit():
    from simweb.language import build_language

    sc, checks = _checks("shumailov_categorical")
    n = sc.labs[0].crawl_budget
    p = build_language(sc.language, sc.run.seed).probs
    assert len(checks) == 3
    for c in checks:
        h = 1 - float((p ** 2).sum())
        for _ in range(_g(c) + 1):  # E[p̂_i²] = p_i² + p_i(1 − p_i)/n for p̂ = Multinomial(n, p)/n
            h = h - h / n
        assert c.formula == pytest.approx(h, rel=1e-9), c.quantity


def test_fixation_probabilities_are_the_starting_shares():
    from simweb.language import build_language

    sc, checks = _checks("shumailov_fixation")
    p = build_language(sc.language, sc.run.seed).probs
    assert [c.formula for c in checks] == pytest.approx(list(p)) and all(c.proportion for c in checks)
    last = sc.run.ticks - 1
    df = pl.DataFrame({"probs": [[0.5, 0.5, 0.0]] * last + [[0.0, 1.0, 0.0]]})
    assert [c.per_replicate(df) for c in checks] == [0.0, 1.0, 0.0]


def test_jangjoo_absorption_at_each_generation_is_the_chains():
    sc, checks = _checks("jangjoo_no_anchor")
    M, p = sc.labs[0].crawl_budget, float(sc.language.probs[0])
    assert [_g(c) for c in checks] == [4, 19, 59, 119] and all(c.proportion for c in checks)
    # the chain, built a second way: generation 0 is M human samples, each later one M samples of the last fit
    law = binom.pmf(np.arange(M + 1), M, p)
    absorbed = []
    for _ in range(120):
        absorbed.append(law[0] + law[-1])
        law = sum(law[k] * binom.pmf(np.arange(M + 1), M, k / M) for k in range(M + 1))
    for c in checks:
        assert c.formula == pytest.approx(absorbed[_g(c)], rel=1e-9, abs=1e-12), c.quantity
    df = pl.DataFrame({"probs": [[0.5, 0.5]] * 19 + [[1.0, 0.0]] * 101})
    assert [c.per_replicate(df) for c in checks] == [0.0, 1.0, 1.0, 1.0]


def _fixed_point(step, start: float = 0.0) -> float:
    v = start
    for _ in range(100_000):
        v, old = step(v), v
        if abs(v - old) < 1e-16:
            break
    return v


@pytest.mark.parametrize("anchors", [None, 3])  # the paper's m = 1, and one where 2m + 1 ≠ 2/m + 1
def test_jangjoo_anchors_stationary_variance_is_the_fixed_point_of_its_map(anchors):
    sc, (check,) = _checks("jangjoo_anchors", *([f"labs[0].anchors={anchors}"] if anchors else []))
    M, m, p = sc.labs[0].crawl_budget, sc.labs[0].anchors, float(sc.language.probs[0])
    # p̂' = (Binomial(M, p̂) + Binomial(m, p)) / (M + m); E[p̂] = p, E[p̂(1 − p̂)] = p(1 − p) − v
    v = _fixed_point(lambda v: (M * (p * (1 - p) - v) + M * M * v + m * p * (1 - p)) / (M + m) ** 2)
    assert check.formula == pytest.approx(v, rel=1e-9)
    _late_mean_is_from_the_burn_in_on(check, sc, centre=p)


@pytest.mark.parametrize("strength", [None, 5.0])  # the paper's a = 1, and a = 2.5 (where a, 1/a and a² differ)
def test_jangjoo_prior_stationary_variance_is_the_fixed_point_of_its_map(strength):
    sc, (check,) = _checks("jangjoo_prior", *([f"labs[0].prior.strength={strength}"] if strength else []))
    M, c = sc.labs[0].crawl_budget, sc.labs[0].prior.strength
    # c pseudo-counts at ½: p̂' = (Binomial(M, p̂) + c/2) / (M + c); E[p̂] = ½
    v = _fixed_point(lambda v: (M * (0.25 - v) + M * M * v) / (M + c) ** 2)
    assert check.formula == pytest.approx(v, rel=1e-9)
    _late_mean_is_from_the_burn_in_on(check, sc, centre=0.5)


def _late_mean_is_from_the_burn_in_on(check: Check, sc, centre: float) -> None:
    ticks = sc.run.ticks
    p0 = np.full(ticks, centre)
    p0[ticks // 2:] = centre + 0.1  # only the second half counts
    p0[ticks // 2 - 1] = centre + 5.0
    df = pl.DataFrame({"probs": [[x, 1 - x] for x in p0]})
    assert check.per_replicate(df) == pytest.approx(0.01, rel=1e-9)


@pytest.mark.parametrize("std", [None, 2.0])
def test_alemohammad_stationary_mean_error_is_the_fixed_point_of_its_map(std):
    sc, (check,) = _checks("alemohammad_fresh", *([f"language.std={std}"] if std else []))
    n_r, n_s, s2 = sc.labs[0].anchors, sc.labs[0].crawl_budget, sc.language.std ** 2
    # μ̂' = (n_s samples of N(μ̂, σ²) + n_r of N(0, σ²)) / (n_s + n_r)
    v = _fixed_point(lambda v: (n_s ** 2 * v + (n_s + n_r) * s2) / (n_s + n_r) ** 2)
    assert check.formula == pytest.approx(v, rel=1e-9)
    ticks = sc.run.ticks
    err = np.zeros(ticks)
    err[ticks // 2:] = 2.0
    assert check.per_replicate(pl.DataFrame({"mean_sq_error": err})) == 2.0


@pytest.mark.parametrize("W", [1, 2, 3, 7])
def test_window_error_is_noise_over_w_ticks_plus_the_walk_inside_the_window(W):
    s2, n, tau = 2.0, 50, 0.3
    # μ̂ − μ_t = noise of n·W samples − Σ_k ((W − k)/W) · step_k, over the W − 1 steps inside the window
    walk = tau ** 2 * sum(((W - k) / W) ** 2 for k in range(1, W))
    assert window_error(W, s2, n, tau) == pytest.approx(s2 / (n * W) + walk, rel=1e-12)


def test_drift_window_checks_every_window_and_the_best_against_the_others():
    sc, checks = _checks("drift_window")
    n, s2, tau = sc.publishers[0].pages_per_tick, sc.language.std ** 2, sc.language.drift.mean_step_sd
    windows = {lab.name: lab.regime.window_ticks for lab in sc.labs}
    errors = {lab: window_error(W, s2, n, tau) for lab, W in windows.items()}
    best = min(errors, key=errors.get)
    assert [c.formula for c in checks[:len(windows)]] == pytest.approx(list(errors.values()))
    diffs = [errors[best] - errors[lab] for lab in windows if lab != best]
    assert [c.formula for c in checks[len(windows):]] == pytest.approx(diffs) and all(d < 0 for d in diffs)
    # each lab's late mean, from the largest window's first full tick on, and the paired difference
    start = max(windows.values()) - 1
    rows = [{"lab": lab, "generation": g, "mean_sq_error": float(i + 1 + (100 if g < start else 0))}
            for i, lab in enumerate(windows) for g in range(start + 3)]
    df = pl.DataFrame(rows)
    labs = list(windows)
    assert [c.per_replicate(df) for c in checks[:len(windows)]] == [float(i + 1) for i in range(len(labs))]
    others = [lab for lab in labs if lab != best]
    assert [c.per_replicate(df) for c in checks[len(windows):]] == \
        [float(labs.index(best) - labs.index(lab)) for lab in others]


def test_generations_past_the_run_are_checked_at_its_last_one():
    _, checks = _checks("shumailov_gaussian_mle", "run.ticks=20")
    assert sorted({_g(c) for c in checks}) == [0, 9, 19]


# ---------------------------------------------------------------- the pass rule
def _rows(values, formula, proportion=False):
    target = Target("t", "paper", lambda sc: [Check("q", formula, lambda df: float(df["x"][0]), proportion)])
    gens = pl.DataFrame({"point": list(range(len(values))), "generation": [0] * len(values), "x": values})
    return _check_rows(target, None, gens)


def test_a_check_is_the_replicates_mean_in_standard_errors_of_it():
    (row,) = _rows([1.0, 2.0, 3.0, 6.0], 2.0)
    se = np.std([1.0, 2.0, 3.0, 6.0], ddof=1) / 2
    assert row["simulated_mean"] == 3.0 and row["replicates"] == 4
    assert row["std_error"] == pytest.approx(se) and row["z"] == pytest.approx(1.0 / se)
    assert row["passed"] == (abs(1.0 / se) <= Z_PASS) and row["formula"] == 2.0
    (far,) = _rows([1.0, 1.1, 0.9, 1.0], 5.0)
    assert not far["passed"]
    (edge,) = _rows([0.0, 2.0], 1.0 + Z_PASS)  # mean 1, SE 1: z = −Z_PASS exactly still passes
    assert edge["z"] == pytest.approx(-Z_PASS) and edge["passed"]


def test_a_proportion_uses_the_binomial_error_at_the_formula_and_agreement_needs_the_formula():
    (row,) = _rows([1.0] * 10, 0.9, proportion=True)  # all agree, yet the SE is √(0.9 · 0.1 / 10)
    assert row["std_error"] == pytest.approx(math.sqrt(0.09 / 10))
    assert row["z"] == pytest.approx(0.1 / math.sqrt(0.09 / 10)) and row["passed"]
    (same,) = _rows([0.5] * 5, 0.5)
    assert same["std_error"] == 0.0 and same["z"] == 0.0 and same["passed"]
    (other,) = _rows([0.5] * 5, 0.25)
    assert other["z"] == math.inf and not other["passed"]


def test_reproduce_runs_the_targets_asked_for_with_their_overrides_and_replicates():
    """Two tiny replicates through the real loop: the table is one row per check of each target asked for, the
    overrides reach the scenario (2 ticks: generations 0 and 1 only) and the replicates differ (their seeds)."""
    from simweb.reproduce import RESULT_SCHEMA, reproduce

    seen = []
    table = reproduce(replicates=3, only=["shumailov_gaussian_mle", "shumailov_categorical"],
                      overrides=["run.ticks=2"], on_target=seen.append)
    assert seen == ["shumailov_gaussian_mle", "shumailov_categorical"]
    assert dict(table.schema) == RESULT_SCHEMA
    assert table["target"].to_list() == ["shumailov_gaussian_mle"] * 4 + ["shumailov_categorical"] * 2
    assert (table["replicates"] == 3).all() and (table["std_error"] > 0).all()
    assert [int(re.search(r"g=(\d+)", q).group(1)) for q in table["quantity"]] == [0, 0, 1, 1, 0, 1]


# what each kind of check reads from one replicate's generations, by the start of its quantity
READS = {
    "E[σ²]/σ²": lambda df, g, s2: df["var_ratio"][g],
    "E[ln σ²]": lambda df, g, s2: math.log(df["var_ratio"][g] * s2),
    "E[μ²]": lambda df, g, s2: df["mean_sq_error"][g],
    "E[1−Σp²]": lambda df, g, s2: df["gini_simpson"][g],
    "P(absorbed)": lambda df, g, s2: float(df["probs"][g][0] in (0.0, 1.0)),
}
GENERATIONS = {  # the generations each target checks, by kind, when the run is long enough
    "shumailov_gaussian_mle": {"E[σ²]/σ²": [0, 9, 49, 99], "E[ln σ²]": [0, 9, 49, 99]},
    "shumailov_gaussian_unbiased": {"E[μ²]": [9, 49, 99], "E[σ²]/σ²": [0, 9, 49], "E[ln σ²]": [9, 49, 99]},
    "gerstgrasser_accumulate": {"E[μ²]": [9, 99]},
    "shumailov_categorical": {"E[1−Σp²]": [0, 9, 49]},
    "jangjoo_no_anchor": {"P(absorbed)": [4, 19, 59, 119]},
}


@pytest.mark.parametrize("name", list(GENERATIONS))
def test_each_check_reads_its_own_column_at_its_own_generation(name):
    """A σ of 2 (so that σ² ≠ σ), 200 ticks (so that no generation is clipped to the last), and a frame whose
    every cell differs: each check must read exactly its column at its generation."""
    overrides = ["run.ticks=200"] + (["language.std=2.0"] if "gaussian" in name or "gerstgrasser" in name else [])
    sc, checks = _checks(name, *overrides)
    s2 = sc.language.std ** 2 if sc.language.family == "gaussian" else 1.0
    g = np.arange(200)
    df = pl.DataFrame({"var_ratio": 1.0 + g / 1000, "mean_sq_error": 2.0 + g / 100, "gini_simpson": 0.5 - g / 1000,
                       "probs": [{4: [0.0, 1.0], 19: [1.0, 0.0], 119: [0.0, 1.0]}.get(k, [0.3, 0.7]) for k in g]})
    seen: dict[str, list[int]] = {}
    for c in checks:
        kind = next(k for k in READS if c.quantity.startswith(k))
        seen.setdefault(kind, []).append(_g(c))
        assert c.per_replicate(df) == pytest.approx(READS[kind](df, _g(c), s2)), c.quantity
    assert seen == GENERATIONS[name]
    if "gaussian" in name or "gerstgrasser" in name:  # the formulas scale with σ²
        base = _checks(name, "run.ticks=200")[1]
        for c, b in zip(checks, base):
            if c.quantity.startswith("E[μ²]"):
                assert c.formula == pytest.approx(4 * b.formula)
            elif c.quantity.startswith("E[ln σ²]"):
                assert c.formula == pytest.approx(b.formula + math.log(4))
