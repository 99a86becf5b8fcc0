"""Seed groups compared honestly (``runs --group``, ``runs compare --group``): the 95% confidence
interval of a group's mean (Student's t, n - 1 degrees of freedom) and, between two groups, the
difference of their means with its 95% interval and the p-value of Welch's t-test (unequal
variances). A mean and a std say nothing of how sure a difference is; with n < 2 nothing can be
told, and the text says so. scipy (the ``stats`` extra; its Student's t functions) is imported
here only, when a group's statistics are computed: ``runs`` lists plain runs without it."""

from __future__ import annotations

import math
import statistics
from types import ModuleType
from typing import Any

#: The level of the intervals.
LEVEL = 0.95
#: What ``runs`` prints on stderr when scipy is missing (the intervals and tests are left out).
NO_SCIPY = "confidence intervals and t-tests need scipy: pip install 'torch-lab[stats]'"


def scipy_special() -> ModuleType | None:
    """``scipy.special`` (Student's t distribution functions: a third of ``scipy.stats``' import
    time), or None when scipy is not installed."""
    try:
        from scipy import special
    except ImportError:
        return None
    return special


def too_few(*counts: int) -> str:
    """The plain statement that ``counts`` runs are too few to tell anything."""
    return f"too few runs to tell (n={'/'.join(map(str, counts))})"


def interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% confidence interval of the mean of ``values``; None for fewer than two values."""
    special = scipy_special()
    if len(values) < 2 or special is None:
        return None
    mean, n = statistics.fmean(values), len(values)
    half = float(special.stdtrit(n - 1, (1 + LEVEL) / 2)) * statistics.stdev(values) / math.sqrt(n)
    return mean - half, mean + half


def welch(reference: list[float], other: list[float]) -> dict[str, Any] | None:
    """``other``'s mean minus ``reference``'s, its 95% interval (Welch-Satterthwaite degrees of
    freedom) and the two-sided p-value of Welch's t-test: what scipy's ``ttest_ind(other,
    reference, equal_var=False)`` gives; None when either has fewer than two values. With no
    spread in either group the test is undefined: p, df and the interval are None."""
    special = scipy_special()
    if len(reference) < 2 or len(other) < 2 or special is None:
        return None
    diff = statistics.fmean(other) - statistics.fmean(reference)
    va, vb = statistics.variance(reference) / len(reference), statistics.variance(other) / len(other)
    if va + vb == 0:
        return {"diff": diff, "low": None, "high": None, "p": None, "df": None}
    df = (va + vb) ** 2 / (va ** 2 / (len(reference) - 1) + vb ** 2 / (len(other) - 1))
    error = math.sqrt(va + vb)
    half = float(special.stdtrit(df, (1 + LEVEL) / 2)) * error
    return {"diff": diff, "low": diff - half, "high": diff + half, "df": df,
            "p": 2 * float(special.stdtr(df, -abs(diff) / error))}


def interval_text(values: list[float]) -> str:
    """``[low, high]`` to 4 significant digits, the plain statement for n < 2, ``-`` for none."""
    if not values:
        return "-"
    found = interval(values)
    return f"[{found[0]:.4g}, {found[1]:.4g}]" if found else too_few(len(values))


def welch_text(reference: list[float], other: list[float]) -> str:
    """``+0.2333 [-0.37, 0.84], p=0.27``: the difference, its interval and the p-value."""
    if not reference or not other:
        return "-"
    found = welch(reference, other)
    if found is None:
        return too_few(len(reference), len(other))
    if found["p"] is None:
        return f"{found['diff']:+.4g} (no spread in either group: no test)"
    return f"{found['diff']:+.4g} [{found['low']:.4g}, {found['high']:.4g}], p={found['p']:.3g}"


def rows(series: list[tuple[str, list[list[float]]]]) -> list[list[str]]:
    """The rows ``runs compare --group`` adds for each (label, values per group) of ``series``:
    each group's 95% interval and, from the second group on, the difference from the first
    group with Welch's test; none without scipy."""
    if scipy_special() is None or not series:
        return []
    width = len(series[0][1])
    found = [["95% interval of the mean", *([""] * width)]]
    found += [[f"  {label}", *(interval_text(values) for values in groups)] for label, groups in series]
    if width > 1:
        found.append(["minus the first (Welch)", *([""] * width)])
        found += [[f"  {label}", "", *(welch_text(groups[0], values) for values in groups[1:])]
                  for label, groups in series]
    return found
