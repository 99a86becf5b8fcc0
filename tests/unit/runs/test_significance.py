"""Seed groups compared honestly: the intervals and Welch's test against scipy's own, and
``runs compare --group`` / ``runs --group`` through the real console script, with scipy and
without it."""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path

from scipy import stats

from conftest import run_cli
from torch_lab.runs.significance import NO_SCIPY, interval, interval_text, welch, welch_text
from unit.runs.test_groups import root  # noqa: F401 (the fixture)

A, B = [0.5, 0.6, 0.9], [0.8, 1.0]


def test_welch_is_scipys_ttest_with_unequal_variances() -> None:
    expected = stats.ttest_ind(B, A, equal_var=False)
    found = welch(A, B)
    assert found["p"] == float(expected.pvalue) and found["df"] == float(expected.df)
    assert (found["low"], found["high"]) == tuple(map(float, expected.confidence_interval(0.95)))
    # Welch-Satterthwaite by hand: the same degrees of freedom, difference and p
    va, vb = statistics.variance(A) / 3, statistics.variance(B) / 2
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 1)
    assert math.isclose(found["df"], df) and math.isclose(found["diff"], 0.9 - statistics.mean(A))
    t = found["diff"] / math.sqrt(va + vb)
    assert math.isclose(found["p"], 2 * stats.t.sf(t, df))
    assert welch_text(A, B) == "+0.2333 [-0.2716, 0.7382], p=0.235"


def test_the_interval_of_a_mean_is_students() -> None:
    low, high = interval(A)
    half = stats.t.ppf(0.975, 2) * statistics.stdev(A) / math.sqrt(3)
    assert (low, high) == (statistics.fmean(A) - half, statistics.fmean(A) + half)
    assert interval_text(A) == "[0.1496, 1.184]"


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
