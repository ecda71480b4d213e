"""Interval estimates shown by the viewer: thin adapters over :mod:`reports.stats`.

The statistics live in one place (``reports.stats``); these adapters only give the viewer's
tolerant signatures (NaNs instead of errors for empty data, tuples for templates).

* :func:`wilson_interval`: a run's success rate over its evaluation episodes.
* :func:`t_interval`: an algorithm's mean success over training seeds (the unit of replication).
* :func:`mcnemar_exact_p`: the exact McNemar test on the discordant pairs of two runs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from reports.stats import compare
from reports.stats import t_interval as _t_interval
from reports.stats import wilson_interval as _wilson_interval


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of ``successes / n`` (NaNs when ``n == 0``)."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    return _wilson_interval(successes, n, confidence)


def t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a Student-t interval; low/high are NaN with fewer than two values."""
    xs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not xs:
        return (math.nan, math.nan, math.nan)
    res = _t_interval(xs, confidence)
    return (res["point"], res["low"], res["high"])


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    if only_a + only_b == 0:
        return 1.0
    x = np.array([1.0] * only_a + [0.0] * only_b)
    with warnings.catch_warnings():  # the page shows the p-value; the unreachable-alpha note is for reports
        warnings.simplefilter("ignore")
        return float(compare(x, 1.0 - x, test="mcnemar", paired=True).p_value)
