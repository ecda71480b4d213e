"""Permutation tests, exact when the permutations can be enumerated and Monte-Carlo otherwise.

Two-sample tests relabel the pooled sample (all ``C(nx+ny, nx)`` splits when there are at most
:data:`EXACT_LIMIT`); paired tests flip the signs of the differences (all ``2**n`` sign vectors
when at most :data:`EXACT_LIMIT`). The two-sided p-value is the share of permutations whose
statistic is at least as extreme (in absolute value) as the observed one; a Monte-Carlo p-value
counts the observed arrangement as one of the permutations, ``(1 + hits) / (1 + reps)``, so it is
never 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
from scipy import stats

EXACT_LIMIT = 100_000

#: vectorised two-sample statistic: x-values (P, nx), y-values (P, ny) -> (P,)
TwoSampleStatistic = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _at_least_as_extreme(perm: np.ndarray, observed: float) -> np.ndarray:
    obs = abs(observed)
    perm = np.nan_to_num(np.abs(perm), nan=0.0, posinf=np.inf)
    if np.isinf(obs):
        return np.isinf(perm)
    return perm >= obs - 1e-12 * max(1.0, obs)


def _smallest_p(perm: np.ndarray) -> float:
    """p-value of the most extreme permutation: the share of permutations as extreme as the maximum."""
    magnitude = np.nan_to_num(np.abs(perm), nan=0.0, posinf=np.inf)
    return float(_at_least_as_extreme(perm, float(magnitude.max())).mean())


def _all_splits(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (C, k) and (C, n-k) of every way to choose k of n positions."""
    count = math.comb(n, k)
    first = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), k)), dtype=np.int64,
                        count=count * k).reshape(count, k)
    mask = np.zeros((count, n), dtype=bool)
    np.put_along_axis(mask, first, True, axis=1)
    second = np.argsort(mask, axis=1, kind="stable")[:, : n - k]
    return first, second


def two_sample_permutation_test(x: np.ndarray, y: np.ndarray, statistic: TwoSampleStatistic, reps: int,
                                rng: np.random.Generator) -> tuple[float, float, str, float]:
    """(observed statistic, two-sided p-value, method phrase, smallest attainable p) of a relabelling test.

    The smallest attainable p is that of the most extreme arrangement of these values (exact), or
    ``1 / (1 + reps)`` (Monte-Carlo).
    """
    pooled = np.concatenate([x, y])
    n, nx = pooled.size, x.size
    observed = float(statistic(x[None, :], y[None, :])[0])
    if math.comb(n, nx) <= EXACT_LIMIT:
        first, second = _all_splits(n, nx)
        perm = statistic(pooled[first], pooled[second])
        return (observed, float(_at_least_as_extreme(perm, observed).mean()), f"exact ({len(first)} relabellings)",
                _smallest_p(perm))

    def relabelled(size: int) -> np.ndarray:
        values = pooled[rng.permuted(np.tile(np.arange(n), (size, 1)), axis=1)]
        return statistic(values[:, :nx], values[:, nx:])

    p = _monte_carlo_p(relabelled, n, reps, observed)
    return observed, p, f"Monte-Carlo ({reps} relabellings)", 1.0 / (1 + reps)


def signflip_test(d: np.ndarray, reps: int, rng: np.random.Generator) -> tuple[float, float, str, float]:
    """(mean difference, two-sided p-value, method phrase, smallest attainable p) of the sign-flip test."""
    n = d.size
    observed = float(d.mean())
    magnitude = np.abs(d)
    if 2**n <= EXACT_LIMIT:
        signs = ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1) * 2.0 - 1.0
        perm = signs @ magnitude / n
        return (observed, float(_at_least_as_extreme(perm, observed).mean()), f"exact ({2**n} sign flips)",
                _smallest_p(perm))

    def flipped(size: int) -> np.ndarray:
        return (rng.integers(0, 2, size=(size, n)) * 2.0 - 1.0) @ magnitude / n

    p = _monte_carlo_p(flipped, n, reps, observed)
    return observed, p, f"Monte-Carlo ({reps} sign flips)", 1.0 / (1 + reps)


def _monte_carlo_p(draw: Callable[[int], np.ndarray], n: int, reps: int, observed: float) -> float:
    """(1 + hits) / (1 + reps) over ``reps`` statistics drawn by ``draw(size)`` in chunks of at most
    2,000,000 / n rows (bounded memory), hits being those at least as extreme as ``observed``."""
    hits = 0
    done = 0
    while done < reps:
        size = min(reps - done, max(1, 2_000_000 // n))
        hits += int(_at_least_as_extreme(draw(size), observed).sum())
        done += size
    return (1 + hits) / (1 + reps)


def mean_difference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x.mean(axis=1) - y.mean(axis=1)


def brunner_munzel_parts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Brunner-Munzel quantities for each row: (statistic, df, p_hat, se of p_hat).

    ``p_hat`` estimates P(X < Y) + P(X = Y)/2 and the statistic is positive when Y tends to be
    larger (scipy's sign convention). Rows where both placement variances are 0 get statistic
    +-inf (complete separation) or 0 (no difference at all).
    """
    nx, ny = x.shape[1], y.shape[1]
    combined = stats.rankdata(np.concatenate([x, y], axis=1), axis=1)
    rcx, rcy = combined[:, :nx], combined[:, nx:]
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    mcx, mcy = rcx.mean(axis=1), rcy.mean(axis=1)
    sx = ((rcx - rx - mcx[:, None] + rx.mean(axis=1)[:, None]) ** 2).sum(axis=1) / (nx - 1)
    sy = ((rcy - ry - mcy[:, None] + ry.mean(axis=1)[:, None]) ** 2).sum(axis=1) / (ny - 1)
    spread = nx * sx + ny * sy
    diff = mcy - mcx
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = nx * ny * diff / ((nx + ny) * np.sqrt(spread))
        df = spread**2 / ((nx * sx) ** 2 / (nx - 1) + (ny * sy) ** 2 / (ny - 1))
    stat = np.where(spread > 0, stat, np.where(diff == 0, 0.0, np.copysign(np.inf, diff)))
    p_hat = (mcy - (ny + 1) / 2) / nx
    se = np.sqrt(spread) / (nx * ny)
    return stat, df, p_hat, se


def brunner_munzel_statistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return brunner_munzel_parts(x, y)[0]
