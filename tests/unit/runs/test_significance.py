"""Seed groups compared honestly: the intervals and Welch's test against scipy's own, and
``runs compare --group`` / ``runs --group`` through the real console script, with scipy and
without it."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

import pytest
from scipy import stats

from conftest import run_cli
from torch_lab.runs.significance import NO_SCIPY, interval, interval_text, welch, welch_text
from unit.runs.test_groups import root  # noqa: F401 (the fixture)

A, B = [0.5, 0.6, 0.9], [0.8, 1.0]


@pytest.mark.parametrize("reference, other", [(A, B), ([1.0, 2.0, 3.5, 4.0], [2.0, 2.5, 9.0]),
                                              ([0.45, 0.55, 0.85], [0.7, 0.9]), ([3.0, 1.0], [-2.0, 5.0, 0.5])])
def test_welch_is_scipys_ttest_with_unequal_variances(reference: list[float], other: list[float]) -> None:
    expected = stats.ttest_ind(other, reference, equal_var=False)
    low, high = expected.confidence_interval(0.95)
    found = welch(reference, other)
    for name, value in (("p", expected.pvalue), ("df", expected.df), ("low", low), ("high", high),
                        ("diff", statistics.fmean(other) - statistics.fmean(reference))):
        assert math.isclose(found[name], float(value), rel_tol=1e-12, abs_tol=1e-15), name  # to the last bits


def test_the_printed_welch_and_interval_texts() -> None:
    # Welch-Satterthwaite by hand: df 2.997, t 1.414 -> p 0.2350 (scipy: 0.23503...)
    va, vb = statistics.variance(A) / 3, statistics.variance(B) / 2
    assert math.isclose(welch(A, B)["df"], (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 1))
    assert welch_text(A, B) == "+0.2333 [-0.2716, 0.7382], p=0.235"
    low, high = interval(A)
    half = stats.t.ppf(0.975, 2) * statistics.stdev(A) / math.sqrt(3)
    assert math.isclose(low, statistics.fmean(A) - half) and math.isclose(high, statistics.fmean(A) + half)
    assert interval_text(A) == "[0.1496, 1.184]" and interval_text(B) == "[-0.3706, 2.171]"


def test_too_few_runs_are_said_plainly() -> None:
    assert interval([0.7]) is None and interval_text([0.7]) == "too few runs to tell (n=1)"
    assert welch(A, [0.7]) is None and welch_text(A, [0.7]) == "too few runs to tell (n=3/1)"
    assert interval_text([]) == welch_text([], A) == "-"
    assert welch_text([1.0, 1.0], [2.0, 2.0]) == "+1 (no spread in either group: no test)"


def test_without_scipy_the_intervals_are_left_out_with_a_note(root: Path, tmp_path: Path) -> None:  # noqa: F811
    shim = tmp_path / "shim" / "scipy"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no scipy here')\n")
    env = {"PYTHONPATH": f"{shim.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    listed = run_cli("runs", "--group", "--root", root, env=env, timeout=60)
    assert listed.returncode == 0 and listed.stderr == f"runs: {NO_SCIPY}\n"
    assert "interval" not in listed.stdout and "loss/val=0.6667 ± 0.2082 (0.5-0.9)" in listed.stdout
    compared = run_cli("runs", "compare", "--group", "a1", "b1", "--root", root, env=env, timeout=60)
    assert compared.returncode == 0 and compared.stderr == f"runs: {NO_SCIPY}\n"
    assert compared.stdout.splitlines()[-1].split() == ["loss/val", "0.6667", "±", "0.2082", "(0.5-0.9)",
                                                        "0.9", "±", "0.1414", "(0.8-1)"]
