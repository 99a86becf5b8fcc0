"""How long each bad input of the table (tests/bad_inputs.py) takes to be reported: every row's
command through the real console script, timed from start to exit, in a fresh folder with a fresh
copy of the toy experiment, its own artifacts root and ClearML cache, and no ClearML server.

    python benchmarks/error_latency.py [--repeats 3] [--smoke]

Each row is also checked: its exit code and its last stderr line must be the table's. The target
is 3 s per row, imports included; rows reported only after the experiment's ``__main__.py`` ran
(it imports torch and Lightning) are marked. ``--smoke`` runs the first three rows once.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import common

sys.path.insert(0, str(common.REPO / "tests"))
from bad_inputs import CASES, Case  # noqa: E402  (tests/ holds the table)
from conftest import ASSETS, run_cli  # noqa: E402

TARGET_S = 3.0
SMOKE_ROWS = 3
#: Variables that would point a run at a ClearML server or elsewhere than its folder.
CLEARED = ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY",
           "CLEARML_OFFLINE_MODE", "CLEARML_CONFIG_FILE", "TORCH_LAB_ARTIFACTS")


@contextmanager
def isolated(folder: Path) -> Iterator[Path]:
    """Work in ``folder`` with its own HOME and ClearML cache and no server configured (as the
    tests' ``isolated`` fixture does); returns the toy experiment's hparams.py copied there."""
    saved, cwd = dict(os.environ), Path.cwd()
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ.update(CLEARML_CACHE_DIR=str(folder / "clearml-cache"), HOME=str(folder / "home"),
                      PYTHONWARNINGS="ignore")
    toy = folder / "experiments" / "01_toy"
    shutil.copytree(ASSETS / "toy", toy)
    os.chdir(folder)
    try:
        yield toy / "hparams.py"
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


def measure(case: Case, scratch: Path) -> tuple[float, bool]:
    """Seconds from starting the row's command to its exit, and whether it printed the row's line
    with the row's exit code."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    with isolated(folder) as toy:
        env = case.prepare(toy)
        start = time.perf_counter()
        result = run_cli(*case.args, env=env, file_size_limit=case.file_size_limit, timeout=300)
        seconds = time.perf_counter() - start
    lines = result.stderr.strip().splitlines()
    runs = list((folder / "data" / "artifacts").glob("*/run.json"))
    run = runs[0].parent if len(runs) == 1 and not case.before_training else None
    ok = (result.returncode == case.exit_code and bool(lines)
          and lines[-1] == case.expected_line(env, run) and "Traceback" not in result.stderr)
    return seconds, ok


def main() -> None:
    parser = common.parser("error_latency", __doc__.splitlines()[0])
    args = parser.parse_args()
    cases = CASES[:SMOKE_ROWS] if args.smoke else CASES
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in cases:
            measured = [measure(case, Path(scratch)) for _ in range(common.repeats(args))]
            seconds = common.median([s for s, _ in measured])
            rows.append({"row": case.id, "exit": case.exit_code, "seconds": seconds,
                         "under_3s": seconds < TARGET_S, "runs_main_py": case.needs_main_executed,
                         "ok": all(ok for _, ok in measured)})
    common.print_table(f"Seconds to report each bad input (median of {common.repeats(args)})", rows)
    slow = [row["row"] for row in rows if not row["under_3s"]]
    print(f"\n{len(rows) - len(slow)} of {len(rows)} rows reported in under {TARGET_S:g} s; "
          f"slower: {', '.join(slow) or 'none'}")
    common.write_json(args.out, {
        "benchmark": "error_latency",
        "settings": {"smoke": args.smoke, "repeats": common.repeats(args), "target_s": TARGET_S},
        "environment": common.environment(),
        "rows": rows,
        "all_ok": all(row["ok"] for row in rows),
        "slower_than_target": slow,
    })


if __name__ == "__main__":
    main()
