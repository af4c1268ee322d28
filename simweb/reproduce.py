"""The model-collapse literature, reproduced through simweb's own loop.

Each target is a scenario under ``scenarios/papers/`` — an ordinary web whose
one population writes only AI pages after tick 0, crawled by one lab — run as
R replicates through the same Publisher / Scraper / Trainer / Evaluator code as
every other scenario. Each check compares a closed form from the paper with
the replicates' mean and its standard error; it passes when they differ by at
most ``Z_PASS`` standard errors. Formulas read n, σ², p, M, m and a from the
scenario, so a smaller version of a target (fewer ticks or replicates) is
checked against its own closed form.

Generation g of a lab is its (g+1)-th fit: generation 0 is fitted on human data.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import polars as pl
from scipy.special import digamma
from scipy.stats import binom

from simweb.scenario import Scenario, load_scenario
from simweb.sweep import expand_grid, simulate_points, worker_pool

__all__ = ["TARGETS", "Target", "Check", "reproduce", "PAPERS_DIR", "Z_PASS"]

PAPERS_DIR = Path(__file__).resolve().parent.parent / "scenarios" / "papers"
Z_PASS = 4.0  # |mean − formula| ≤ 4 SE: a correct loop fails one check in ~16 000


@dataclass(frozen=True)
class Check:
    quantity: str
    formula: float
    per_replicate: Callable[[pl.DataFrame], float]  # one replicate's generations (sorted) → one number
    proportion: bool = False  # a 0/1 outcome: its standard error is the binomial one at the formula's value


@dataclass(frozen=True)
class Target:
    name: str  # scenario file stem under scenarios/papers/
    paper: str
    checks: Callable[[Scenario], list[Check]]


def _gens(sc: Scenario, wanted: Sequence[int]) -> list[int]:
    last = sc.run.ticks - 1
    return sorted({min(g, last) for g in wanted})


def _at(column: str, g: int, fn=lambda v: v) -> Callable[[pl.DataFrame], float]:
    return lambda df: float(fn(df[column][g]))


def _late_mean(column_fn: Callable[[pl.DataFrame], np.ndarray], start: int) -> Callable[[pl.DataFrame], float]:
    return lambda df: float(np.mean(column_fn(df)[start:]))


def _p0(df: pl.DataFrame) -> np.ndarray:
    return np.array([p[0] for p in df["probs"].to_list()])


# ---------------------------------------------------------------- the targets
def _shumailov_mle(sc: Scenario) -> list[Check]:
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    checks = []
    for g in _gens(sc, [0, 9, 49, 99]):
        t = g + 1
        checks.append(Check(f"E[σ²]/σ² at g={g}: ((n−1)/n)^t", ((n - 1) / n) ** t, _at("var_ratio", g)))
        checks.append(Check(f"E[ln σ²] at g={g}: t[ψ((n−1)/2)+ln(2/n)]",
                            math.log(s2) + t * (digamma((n - 1) / 2) + math.log(2 / n)),
                            _at("var_ratio", g, lambda v: math.log(v * s2))))
    return checks


def _shumailov_unbiased(sc: Scenario) -> list[Check]:
    """Divide by n − 1: E[s² | σ²_prev] = σ²_prev, so E[σ²_g]/σ² = 1 at every g (a martingale), while
    (n−1)s²/σ²_prev ~ χ²_{n−1} and E[ln χ²_k] = ψ(k/2) + ln 2 make ln σ² drift by ψ((n−1)/2) + ln(2/(n−1)) per fit.
    An MLE variance in its place shrinks the first by (n−1)/n and the second by ln((n−1)/n) per fit."""
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    checks = [Check(f"E[μ²] at g={g}: σ²t/n", s2 * (g + 1) / n, _at("mean_sq_error", g)) for g in _gens(sc, [9, 49, 99])]
    # σ² itself is heavy-tailed late (E[σ⁴_t]/σ⁴ = (1 + 2/(n−1))^t), so its mean is checked early; ln σ² throughout
    checks += [Check(f"E[σ²]/σ² at g={g}: 1", 1.0, _at("var_ratio", g)) for g in _gens(sc, [0, 9, 49])]
    checks += [Check(f"E[ln σ²] at g={g}: t[ψ((n−1)/2)+ln(2/(n−1))]",
                     math.log(s2) + (g + 1) * (digamma((n - 1) / 2) + math.log(2 / (n - 1))),
                     _at("var_ratio", g, lambda v: math.log(v * s2))) for g in _gens(sc, [9, 49, 99])]
    return checks


def _gerstgrasser(sc: Scenario) -> list[Check]:
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    return [Check(f"E[μ²] at g={g}: (σ²/n)Σ1/k² (→ π²/6·σ²/n = {math.pi ** 2 / 6 * s2 / n:.5f})",
                  s2 / n * sum(1 / k ** 2 for k in range(1, g + 2)), _at("mean_sq_error", g))
            for g in _gens(sc, [9, 99])]


def _categorical_drift(sc: Scenario) -> list[Check]:
    from simweb.language import build_language

    n = sc.labs[0].crawl_budget
    p = build_language(sc.language, sc.run.seed).probs
    h0 = 1 - float((p ** 2).sum())
    return [Check(f"E[1−Σp²] at g={g}: (1−Σp₀²)(1−1/n)^t", h0 * (1 - 1 / n) ** (g + 1), _at("gini_simpson", g))
            for g in _gens(sc, [0, 9, 49])]


def _fixation(sc: Scenario) -> list[Check]:
    from simweb.language import build_language

    p = build_language(sc.language, sc.run.seed).probs
    last = sc.run.ticks - 1
    return [Check(f"P(outcome {i} takes over) = p_{i}", float(p[i]),
                  (lambda i: lambda df: float(df["probs"][last][i] == 1.0))(i), proportion=True) for i in range(len(p))]


def absorption_by(M: int, p: float, generations: int) -> np.ndarray:
    """P(the two-outcome fit sits at 0 or 1 at generation g), g = 0..generations−1, from the exact chain on counts."""
    states = np.arange(M + 1)
    step = binom.pmf(states[None, :], M, states[:, None] / M)  # row: count now; column: count next
    dist = binom.pmf(states, M, p)  # generation 0: M human samples
    out = np.empty(generations)
    for g in range(generations):
        out[g] = dist[0] + dist[M]
        dist = dist @ step
    return out


def _jangjoo_absorbed(sc: Scenario) -> list[Check]:
    M = sc.labs[0].crawl_budget
    p = float(sc.language.probs[0])
    gens = _gens(sc, [4, 19, 59, 119])
    exact = absorption_by(M, p, max(gens) + 1)
    return [Check(f"P(absorbed) at g={g}: exact chain", float(exact[g]),
                  (lambda g: lambda df: float(df["probs"][g][0] in (0.0, 1.0)))(g), proportion=True) for g in gens]


def _burn_in(sc: Scenario) -> int:
    return sc.run.ticks // 2


def _jangjoo_anchors(sc: Scenario) -> list[Check]:
    M, m = sc.labs[0].crawl_budget, sc.labs[0].anchors
    p = float(sc.language.probs[0])
    v = p * (1 - p) * (M + m) / (m * (2 * M + m) + M)
    return [Check(f"stationary Var[p̂]: p(1−p)(M+m)/(m(2M+m)+M) (→ p(1−p)/(2m+1) = {p * (1 - p) / (2 * m + 1):.5f})", v,
                  _late_mean(lambda df: (_p0(df) - p) ** 2, _burn_in(sc)))]


def _jangjoo_prior(sc: Scenario) -> list[Check]:
    M, a = sc.labs[0].crawl_budget, sc.labs[0].prior.strength / 2
    v = M / (4 * (4 * a * M + 4 * a * a + M))
    return [Check(f"stationary Var[p̂]: M/(4(4aM+4a²+M)) (→ Beta(2a,2a) var = {1 / (4 * (4 * a + 1)):.5f})", v,
                  _late_mean(lambda df: (_p0(df) - 0.5) ** 2, _burn_in(sc)))]


def _alemohammad(sc: Scenario) -> list[Check]:
    n_r, s2 = sc.labs[0].anchors, sc.language.std ** 2
    lam = sc.labs[0].crawl_budget / n_r
    return [Check(f"stationary E[μ²]: σ²(1+λ)/(n_r(1+2λ)), λ={lam:g}", s2 * (1 + lam) / (n_r * (1 + 2 * lam)),
                  _late_mean(lambda df: df["mean_sq_error"].to_numpy(), _burn_in(sc)))]


def window_error(W: int, s2: float, n: int, tau: float) -> float:
    """E[(μ̂ − μ_t)²] of a mean fitted on the last W ticks of n samples each while μ walks with step sd τ."""
    return s2 / (n * W) + tau ** 2 * (W - 1) * (2 * W - 1) / (6 * W)


def _lab_late_mean(lab: str, column: str, start: int) -> Callable[[pl.DataFrame], float]:
    return lambda df: float(df.filter((pl.col("lab") == lab) & (pl.col("generation") >= start))[column].mean())


def _drift_window(sc: Scenario) -> list[Check]:
    """Several labs, one window each, on the same web; from the largest window's first full tick on."""
    n, s2, tau = sc.publishers[0].pages_per_tick, sc.language.std ** 2, sc.language.drift.mean_step_sd
    windows = {lab.name: lab.regime.window_ticks for lab in sc.labs}
    start = max(windows.values()) - 1
    law = "σ²/(nW) + τ²(W−1)(2W−1)/(6W)"
    checks = [Check(f"E[(μ̂−μ_t)²] at W={W}: {law}", window_error(W, s2, n, tau),
                    _lab_late_mean(lab, "mean_sq_error", start)) for lab, W in windows.items()]
    best = min(windows, key=lambda lab: window_error(windows[lab], s2, n, tau))
    W_best, W_star = windows[best], math.sqrt(3 * s2 / (n * tau ** 2) + 0.5)
    for lab, W in windows.items():  # the best window beats every other, by the formula's margin (paired: same web)
        if lab != best:
            diff = window_error(W_best, s2, n, tau) - window_error(W, s2, n, tau)
            a, b = _lab_late_mean(best, "mean_sq_error", start), _lab_late_mean(lab, "mean_sq_error", start)
            quantity = f"best W={W_best} (W* = √(3σ²/(nτ²)+½) = {W_star:.2f}) vs W={W}: E[err(W*)] − E[err(W)]"
            checks.append(Check(quantity, diff, (lambda a, b: lambda df: a(df) - b(df))(a, b)))
    return checks


def imitation_error(n: int, kappa: float, s2: float, unbiased: bool) -> float:
    """Stationary E[(μ̂ − μ*)²] of a mean fitted on n human samples a generation, each from the truth
    N(μ*, σ²) w.p. 1 − κ and from the lab's latest model w.p. κ: σ² / (n(1 + κ)(1 − cκ) − κ), with
    c = 1 (unbiased variance) or (n − 1)/n (MLE). Derived in scenarios/papers/imitation_k50.toml; inf
    where no stationary state exists (the error diverges)."""
    c = 1.0 if unbiased else (n - 1) / n
    denominator = n * (1 + kappa) * (1 - c * kappa) - kappa
    return s2 / denominator if denominator > 0 else math.inf


def imitation_curve(n: int, kappa: float, s2: float, unbiased: bool, generations: int) -> np.ndarray:
    """E[(μ̂_g − μ*)²] for g = 0..generations−1, from the exact linear recursion of the first and second
    moments (generation 0 fitted on n truth samples): with M = (1−κ)σ² + κ s + κ(1−κ) v,
    v' = κ² v + M/n and s' = c M. It tends to :func:`imitation_error`; near κ → 1 it gets there slowly."""
    c = 1.0 if unbiased else (n - 1) / n
    v, s = s2 / n, c * s2
    out = np.empty(generations)
    for g in range(generations):
        out[g] = v
        m = (1 - kappa) * s2 + kappa * s + kappa * (1 - kappa) * v
        v, s = kappa ** 2 * v + m / n, c * m
    return out


def _imitation(sc: Scenario) -> list[Check]:
    """The mean over the second half of the run of E[(μ̂_g − μ*)²], by the exact moment recursion (so a short
    run is checked against its own transient), labelled with its stationary limit."""
    n, s2 = sc.labs[0].crawl_budget, sc.language.std ** 2
    kappa = sc.publishers[0].imitation.start
    unbiased = sc.labs[0].model.variance == "unbiased"
    v = imitation_error(n, kappa, s2, unbiased)
    start = _burn_in(sc)
    expected = float(imitation_curve(n, kappa, s2, unbiased, sc.run.ticks)[start:].mean())
    return [Check(f"E[(μ̂−μ*)²] at g≥{start}, κ={kappa:g}: moment recursion (→ σ²/(n(1+κ)(1−κ)−κ) = {v:.4f}; "
                  f"κ=0: σ²/n = {s2 / n:.4f})", expected,
                  _late_mean(lambda df: df["mean_sq_error"].to_numpy(), start))]


TARGETS = [
    Target("shumailov_gaussian_mle", "Shumailov et al. 2024 (gaussian, MLE)", _shumailov_mle),
    Target("shumailov_gaussian_unbiased", "Shumailov et al. 2024 (gaussian, unbiased)", _shumailov_unbiased),
    Target("gerstgrasser_accumulate", "Gerstgrasser et al. 2024 (accumulate)", _gerstgrasser),
    Target("shumailov_categorical", "Shumailov et al. 2024 (discrete)", _categorical_drift),
    Target("shumailov_fixation", "Shumailov et al. 2024 (discrete, fixation)", _fixation),
    Target("jangjoo_no_anchor", "Jangjoo, Marsili & Roudi 2026 (no anchor)", _jangjoo_absorbed),
    Target("jangjoo_anchors", "Jangjoo, Marsili & Roudi 2026 (m anchors)", _jangjoo_anchors),
    Target("jangjoo_prior", "Jangjoo, Marsili & Roudi 2026 (Beta prior)", _jangjoo_prior),
    Target("alemohammad_fresh", "Alemohammad et al. 2024 (fresh data)", _alemohammad),
    Target("drift_window", "a drifting truth, sliding window (issue 17)", _drift_window),
    *(Target(f"imitation_k{k}", f"humans imitating the model, κ = 0.{k} (issue 19)", _imitation) for k in (50, 90, 95)),
]

RESULT_SCHEMA = {"target": pl.String, "paper": pl.String, "quantity": pl.String, "formula": pl.Float64,
                 "simulated_mean": pl.Float64, "std_error": pl.Float64, "z": pl.Float64, "replicates": pl.Int64,
                 "passed": pl.Boolean}


def reproduce(*, replicates: int = 400, only: Sequence[str] = (), overrides: Sequence[str] = (), workers: int = 1,
              papers_dir: Path = PAPERS_DIR, on_target: Callable[[str], None] | None = None) -> pl.DataFrame:
    """Run every target (or ``only`` those) for ``replicates`` seeds; one row per check."""
    rows = []
    # one set of worker processes for every target: each process starts in about a second of CPU
    with worker_pool(workers) or contextlib.nullcontext() as pool:
        for target in TARGETS:
            if only and target.name not in only:
                continue
            if on_target:
                on_target(target.name)
            path = papers_dir / f"{target.name}.toml"
            sc = load_scenario(path, overrides)
            text = path.read_text(encoding="utf-8")
            points = expand_grid([], replicates, sc.run.seed)
            gens = simulate_points(text, [_with(p, overrides) for p in points], workers=workers, source=str(path),
                                   pool=pool)
            rows += _check_rows(target, sc, gens)
    return pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")


def _check_rows(target: Target, sc: Scenario, gens: pl.DataFrame) -> list[dict]:
    """One row per check of ``target``: the replicates' mean against its formula."""
    rows = []
    per_rep = [df.sort("generation") for _, df in gens.group_by("point", maintain_order=True)]
    for check in target.checks(sc):
        values = np.array([check.per_replicate(df) for df in per_rep])
        mean = float(values.mean())
        if check.proportion:  # under the formula, the count of 1s is binomial: its SE holds even when all agree
            se = math.sqrt(check.formula * (1 - check.formula) / len(values))
        else:
            se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
        if se > 0:
            z = (mean - check.formula) / se
        else:  # every replicate agrees exactly: pass only if it is the formula itself
            z = 0.0 if math.isclose(mean, check.formula, rel_tol=1e-12, abs_tol=1e-15) else math.inf
        rows.append({"target": target.name, "paper": target.paper, "quantity": check.quantity,
                     "formula": check.formula, "simulated_mean": mean, "std_error": se, "z": z,
                     "replicates": len(values), "passed": bool(abs(z) <= Z_PASS)})
    return rows


def _with(point, overrides: Sequence[str]):
    from dataclasses import replace

    extra = tuple((o.split("=", 1)[0], o.split("=", 1)[1]) for o in overrides)
    return replace(point, grid=extra + point.grid)
