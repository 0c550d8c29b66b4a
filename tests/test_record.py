"""training.json: the training record lives beside config.json, which holds inference numbers only."""

import json
import shutil
from pathlib import Path

import pytest

from audioembed import record
from audioembed.config import ModelConfig
from audioembed.errors import ModelError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "audioembed-base"


def test_the_shipped_config_holds_inference_numbers_only():
    raw = json.loads((SHIPPED / "config.json").read_text())
    assert "extra" not in raw and (SHIPPED / "config.json").stat().st_size < 6000
    rec = record.load(SHIPPED)
    assert rec.training["steps"] == 4000 and rec.settings["batch_size"] == 32 and len(rec.history) > 100
    assert rec.data["hours_by_folder"].keys() == {"music", "sfx", "speech"}


def test_a_folder_written_with_a_record_splits_it_out(tmp_path):
    from audioembed import model_folder as folder

    cfg = ModelConfig(name="x", extra={"training": {"steps": 3, "history": [{"step": 1}]}, "data": {"clips": 2}, "note": 1})
    (tmp_path / "model.safetensors").write_bytes(b"w")
    saved = folder.write(tmp_path, cfg, ["model.safetensors"], card_text="# x\n")
    raw = json.loads((tmp_path / "config.json").read_text())
    assert "extra" not in raw and raw["sha256"] == saved.sha256
    on_disk = json.loads((tmp_path / "training.json").read_text())
    assert on_disk == {"training": {"steps": 3, "history": [{"step": 1}]}, "data": {"clips": 2}, "note": 1}
    assert (tmp_path / "training.json").stat().st_mode & 0o777 == 0o644
    assert record.load(tmp_path).history == [{"step": 1}] and record.load(tmp_path).other == {"note": 1}


def test_folders_from_before_training_json_still_load_with_their_record(tmp_path):
    """v0.3.0's folders carry the record in config.json's `extra`: they load and their record reads."""
    old = tmp_path / "old"
    shutil.copytree(SHIPPED, old)
    raw = json.loads((old / "config.json").read_text())
    raw["extra"] = json.loads((old / "training.json").read_text())
    (old / "config.json").write_text(json.dumps(raw))
    (old / "training.json").unlink()
    cfg = ModelConfig.load(old / "config.json")
    assert cfg.extra["training"]["steps"] == 4000
    assert record.load(old) == record.load(SHIPPED)
    from audioembed import Embedder

    assert Embedder(old, backend="onnx").dim == ModelConfig.load(SHIPPED / "config.json").dim


def test_a_folder_without_a_record_reads_as_empty(tiny_model_dir):
    rec = record.load(tiny_model_dir)
    assert not rec and rec.history == [] and rec.settings == {}


@pytest.mark.parametrize("text", ["[1, 2]", "{\"training\": 3}", "{not json"])
def test_a_malformed_record_is_named(tmp_path, text):
    (tmp_path / "training.json").write_text(text)
    with pytest.raises(ModelError, match="training.json"):
        record.load(tmp_path)
