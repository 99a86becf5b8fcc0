"""TensorBoard's readable run names: links under ``<artifacts root>/tensorboard/`` to the event
folders in the run directories (the event files themselves are tested through ``train`` in
tests/unit/launch/test_fit.py)."""

import os
import shutil
from pathlib import Path

import pytest

from torch_lab.storage.board_links import board_name, link_board, unlink_board

RECORD = {"task_id": "offline-5737615cd59d48c0a9f1eb0e4671a36e", "task_name": "01_toy-hparams",
          "hparams_path": "/x/experiments/01_toy/hparams.py", "started": "2026-12-07T17:25:22+00:00"}


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, "01_toy/hparams/20261207-172522-5737615c"),
    ({"task_name": "dev_01_toy-hparams"}, "01_toy/dev_hparams/20261207-172522-5737615c"),
    ({"task_name": "big lr/2"}, "01_toy/big_lr_2/20261207-172522-5737615c"),  # one component each
    ({"hparams_path": "/x/experiments/01_toy/hparams_big.py", "task_name": "01_toy-hparams_big"},
     "01_toy/hparams_big/20261207-172522-5737615c"),
    ({"started": None, "sweep": {"name": "lr"}}, "01_toy/hparams/5737615c"),  # an odd record: still a name
    ({"group": "01_toy-hparams-seeds-20261207-172505"}, "01_toy/hparams/seeds-20261207-172505/seed-7"),
    ({"sweep": {"name": "lr", "trial": 3}}, "01_toy/hparams/lr/trial-003"),
    ({"sweep": {"name": "01_toy-hparams-sweep", "trial": 3}}, "01_toy/hparams/sweep/trial-003"),  # the default
    ({"sweep": {"name": "lr", "trial": 12, "seed": 1}}, "01_toy/hparams/lr/trial-012-seed-1"),
])
def test_names_tell_runs_seeds_and_trials_apart(fields: dict, expected: str) -> None:
    assert "/".join(board_name({**RECORD, **fields}, seed=7)) == expected


def run_folder(root: Path, task_id: str) -> Path:
    folder = root / f"01_toy-hparams-{task_id}" / "tensorboard"
    folder.mkdir(parents=True)
    (folder / "events.out.tfevents.1").write_text("")
    return folder


def test_links_are_relative_kept_on_resume_and_never_taken_from_another_run(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    first = run_folder(root, RECORD["task_id"])
    [link] = link_board(root, first.parent, RECORD, 0, [first])
    assert link == root / "tensorboard/01_toy/hparams/20261207-172522-5737615c"
    assert os.readlink(link) == "../../../01_toy-hparams-offline-5737615cd59d48c0a9f1eb0e4671a36e/tensorboard"
    assert link_board(root, first.parent, RECORD, 0, [first]) == [link]  # a resumed run: the same link
    group = {"group": "01_toy-hparams-seeds-1", "task_id": "offline-99990000aaaa"}
    [seed] = link_board(root, first.parent, {**RECORD, **group}, 0, [first])
    other = run_folder(root, "offline-12345678bbbb")
    [again] = link_board(root, other.parent, {**RECORD, **group, "task_id": "offline-12345678bbbb"}, 0, [other])
    assert (seed.name, again.name) == ("seed-0", "seed-0-12345678")  # a name taken: the short id added
    assert sorted(p.name for p in again.parent.iterdir()) == ["seed-0", "seed-0-12345678"]
    assert (again / "events.out.tfevents.1").is_file()


def test_several_folders_of_one_run_are_named_by_their_path(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    first = run_folder(root, RECORD["task_id"])
    second = first.parent / "tb" / "version_0"
    second.mkdir(parents=True)
    links = link_board(root, first.parent, RECORD, 0, [first, second])
    assert [link.name for link in links] == ["tensorboard", "tb_version_0"]
    assert [link.resolve() for link in links] == [first.resolve(), second.resolve()]


def test_removing_a_run_removes_its_links_only(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    first, other = run_folder(root, RECORD["task_id"]), run_folder(root, "offline-12345678bbbb")
    [kept] = link_board(root, other.parent, {**RECORD, "task_id": "offline-12345678bbbb", "sweep": {
        "name": "lr", "trial": 0}}, 0, [other])
    [gone] = link_board(root, first.parent, RECORD, 0, [first])
    shutil.rmtree(first.parent)  # as runs rm does, before unlinking: the link is broken by then
    unlink_board(root, first.parent)
    assert not os.path.lexists(gone) and kept.is_symlink() and kept.resolve() == other.resolve()
    assert sorted(p.name for p in (root / "tensorboard" / "01_toy" / "hparams").iterdir()) == ["lr"]
