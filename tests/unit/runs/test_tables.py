"""Paper tables (``runs compare --group --format markdown|latex``) through the real console
script: exact text on run directories written with fixed values and on real runs of the toy
experiment."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from conftest import run_cli
from torch_lab.runs import load_runs
from unit.runs.test_groups import root  # noqa: F401 (the fixture)
from unit.runs.test_report import runs

MARKDOWN = """\
| lr | width | n | best loss/val | loss/test | loss/val |
| --- | --- | ---: | ---: | ---: | ---: |
| 0.1 | - | 3 | **0.667 ± 0.208** | 0.617 ± 0.208 | **0.667 ± 0.208** |
| 0.01 | - | 3 | 0.900 ± 0.141 (n=2) | 0.800 ± 0.141 (n=2) | 0.900 ± 0.141 (n=2) |
| 0.01 | 2 | 1 | 0.700 | **0.600** | 0.700 |
"""

LATEX = r"""% needs \usepackage{booktabs}
\begin{tabular}{llrcc}
\toprule
lr & width & n & loss/test & best loss/val \\
\midrule
0.1 & - & 3 & $0.62 \pm 0.21$ & $\mathbf{0.67 \pm 0.21}$ \\
0.01 & - & 3 & $0.80 \pm 0.14\ (n=2)$ & $0.90 \pm 0.14\ (n=2)$ \\
0.01 & 2 & 1 & $\mathbf{0.60}$ & $0.70$ \\
\bottomrule
\end{tabular}
"""


def test_markdown_bolds_the_lowest_mean_of_each_column(root: Path) -> None:  # noqa: F811
    # loss/val is monitored with mode min: its column and loss/test's (the same metric) bold the lowest
    assert runs(root, "compare", "--group", "a1", "b1", "c1", "--format", "markdown") == MARKDOWN


def test_latex_with_chosen_columns_and_digits(root: Path) -> None:  # noqa: F811
    assert runs(root, "compare", "--group", "a1", "b1", "c1", "--format", "latex",
                "--columns", "loss/test,best", "--digits", "2") == LATEX


def test_a_metric_of_the_maximised_monitor_bolds_the_highest(root: Path) -> None:  # noqa: F811
    for path in root.glob("*/run.json"):
        record = json.loads(path.read_text())
        if record.get("best"):
            record["best"]["mode"] = "max"
        path.write_text(json.dumps(record))
    assert runs(root, "compare", "--group", "a1", "b1", "--format", "markdown", "--columns", "best",
                "--digits", "1").splitlines()[2:] == ["| 0.1 | 3 | 0.7 ± 0.2 |", "| 0.01 | 3 | **0.9 ± 0.1 (n=2)** |"]


def test_mistakes_are_one_line(root: Path) -> None:  # noqa: F811
    for args, line in [
            (("--format", "latex", "--columns", "acc"),
             "runs: error: --columns acc: no metric of these groups (they have: best, loss/test, loss/val)\n"),
            (("--digits", "2"), "runs: error: --columns and --digits are for --format markdown or latex\n")]:
        result = run_cli("runs", "compare", "--group", "a1", *args, "--root", root, timeout=60)
        assert (result.returncode, result.stdout, result.stderr) == (2, "", line)
    result = run_cli("runs", "compare", "a1", "--format", "markdown", "--root", root, timeout=60)
    assert (result.returncode, result.stderr) == (2, "runs: error: --format markdown: tables are of seed "
                                                     "groups; add --group\n")


def test_real_runs(real: SimpleNamespace) -> None:
    """The toy's completed run and its failed one: two groups of one, told apart by max_epochs and
    crash_at_epoch; each cell the run's own value (``load_runs``: the failed run's best so far), the
    lower in bold (loss/val is monitored with mode min); n = 1: no std."""
    loaded = {run["task_id"]: run for run in load_runs(real.root)}
    a, b = loaded[real.a], loaded[real.b]
    assert a["best"]["mode"] == b["best"]["mode"] == "min"
    columns = {"best": (a["best"]["value"], b["best"]["value"]),
               **{name: (a["metrics"][name], b["metrics"][name]) for name in ("loss/val", "loss/train")}}
    cells = [[f"**{v:.4f}**" if v == min(pair) else f"{v:.4f}" for pair in columns.values() for v in pair[i:i + 1]]
             for i in (0, 1)]
    assert runs(real.root, "compare", "--group", real.a, real.b, "--format", "markdown", "--digits", "4",
                "--columns", "best,loss/val,loss/train") == "\n".join([
        "| max_epochs | crash_at_epoch | n | best loss/val | loss/val | loss/train |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
        f"| 2 | None | 1 | {' | '.join(cells[0])} |", f"| 3 | 1 | 1 | {' | '.join(cells[1])} |"]) + "\n"
    text = runs(real.root, "compare", "--group", real.a, real.b, "--format", "latex", "--columns", "accuracy/val")
    assert text.splitlines()[3:7] == [r"max\_epochs & crash\_at\_epoch & n & accuracy/val \\", r"\midrule",
                                      f"2 & None & 1 & ${a['metrics']['accuracy/val']:.3f}$ \\\\",
                                      f"3 & 1 & 1 & ${b['metrics']['accuracy/val']:.3f}$ \\\\"]  # no mode: no bold
    compared = runs(real.root, "compare", "--group", real.a, real.b).splitlines()
    assert compared[-3:] == [f"  {'loss/test':<25}{'':28}-", *(f"  {name:<25}{'':28}too few runs to tell (n=1/1)"
                                                           for name in ("loss/train", "loss/val"))]
