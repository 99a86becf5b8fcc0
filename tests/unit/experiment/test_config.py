"""What ``infer_config``'s ``weights`` may name: a file that must exist, or words saying where
the weights come from."""

from __future__ import annotations

from pathlib import Path

from torch_lab.experiment.config import missing_weights_file


def test_a_weights_file_that_does_not_exist_is_named(tmp_path: Path) -> None:
    model = tmp_path / "model.pt"
    assert missing_weights_file("/nonexistent/model.pt") == "/nonexistent/model.pt"
    assert missing_weights_file("weights/best.ckpt") == "weights/best.ckpt"  # relative, by its ending
    assert missing_weights_file(f"checkpoint {model}") == str(model)  # the demo's form, last word
    model.write_bytes(b"")
    assert missing_weights_file(str(model)) is None and missing_weights_file(f"checkpoint {model}") is None


def test_words_saying_where_weights_come_from_are_not_files() -> None:
    for weights in ("torchvision ResNet-18 ImageNet", "offline-0fce8e9f", "google/vit-base-patch16"):
        assert missing_weights_file(weights) is None, weights
