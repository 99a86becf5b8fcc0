from pathlib import Path

import pytest

from torch_lab.utils import import_script_as_module


def test_each_import_is_a_fresh_module_never_main(tmp_path: Path) -> None:
    script = tmp_path / "hparams.py"
    script.write_text("hparams = {'config': {'lr': 1}}\nimported_as = __name__\n")
    first, second = import_script_as_module(script), import_script_as_module(script)
    assert first is not second and first.__name__ != second.__name__
    assert "__main__" not in (first.imported_as, second.imported_as)
    first.hparams["config"]["lr"] = 2
    assert second.hparams["config"]["lr"] == 1


def test_layered_script_leaves_base_untouched(tmp_path: Path) -> None:
    (tmp_path / "base.py").write_text("hparams = {'config': {'lr': 1, 'width': 8}}\n")
    (tmp_path / "variant.py").write_text(
        "from pathlib import Path\n"
        "from torch_lab.utils import import_script_as_module\n"
        "hparams = import_script_as_module(Path(__file__).parent / 'base.py').hparams\n"
        "hparams['config']['lr'] = 3\n"
    )
    variant = import_script_as_module(tmp_path / "variant.py")
    base = import_script_as_module(tmp_path / "base.py")
    assert variant.hparams == {"config": {"lr": 3, "width": 8}}
    assert base.hparams == {"config": {"lr": 1, "width": 8}}


def test_missing_script_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_script_as_module(tmp_path / "absent.py")
