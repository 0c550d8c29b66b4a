"""The model card (Hub metadata, one writer) and `audioembed push` against the fake hub on 127.0.0.1."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audioembed import Embedder, card
from audioembed.cli import app

from conftest import tone

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "my-model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_exported_card_has_hub_metadata(tiny_model_dir):
    c = card.load(tiny_model_dir)
    data = c.data.to_dict()
    assert data["library_name"] == "audioembed" and data["pipeline_tag"] == "feature-extraction"
    assert data["license"] == "unknown" and "audio-embedding" in data["tags"]
    assert c.text.lstrip().startswith("# tiny-test") and "| model.onnx |" in c.text
    assert card.missing_metadata(tiny_model_dir) == []


def test_card_names_the_training_recipe(tiny_model_dir):
    from audioembed.config import ModelConfig

    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    settings = {"negatives": ["pitch_shift"], "neg_candidates": 4, "neg_space": "head", "neg_lambda": 1.0, "neg_margin": 0.0,
                "rrc_freq_scale": [0.6, 1.5], "rrc_time_scale": [0.6, 1.5], "lr": 1e-4, "lr_decay_from": 0.5,
                "balance_folders": True, "batch_size": 32, "crop_frames": 96}
    cfg.extra["training"] = {"settings": settings, "steps": 10, "samples": 320, "processes": 1, "device": "cpu"}
    text = card.body(cfg)
    assert "pitch_shift; hardest of 4, pushed away in a projector head of their own; λ=1.0, margin=0.0" in text
    assert "0.6×–1.5× on the frequency axis" in text and "half-cosine decay from 0.5" in text and "folders drawn equally" in text
    cfg.extra["training"]["settings"] = {**settings, "lr_after": 3e-5}
    assert "lr 0.0001, half-cosine decay (from 3e-05) from 0.5 of the run" in card.body(cfg)
    cfg.extra["training"]["settings"] = {**settings, "negatives": [], "rrc_freq_scale": [1.0, 1.0], "lr_decay_from": 1.0,
                                         "balance_folders": False}
    text = card.body(cfg)
    assert "BYOL-A (no negatives)" in text and "1×–1× on the frequency axis" in text
    assert "half-cosine" not in text and "folders drawn" not in text


def test_push_uploads_a_folder_the_embedder_then_loads(fake_hub, model_copy, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_pushtest")
    result = runner.invoke(app, ["push", str(model_copy), "me/pushed", "--private"])
    assert result.exit_code == 0, result.output
    assert fake_hub.private["me/pushed"] is True
    assert set(fake_hub.repos["me/pushed"]["main"]) == {"config.json", "model.onnx", "model.safetensors", "README.md"}
    assert fake_hub.tokens and all(t == "Bearer hf_pushtest" for t in fake_hub.tokens)
    commit = fake_hub._commits[("me/pushed", "main")]
    assert f'revision="{commit}"' in result.output
    pulled = Embedder("me/pushed", revision=commit, backend="onnx")
    assert pulled.resolved.source == "hub"
    np.testing.assert_array_equal(pulled.embed(tone(440), sr=16000), Embedder(model_copy, backend="onnx").embed(tone(440), sr=16000))


def test_push_to_a_branch_and_over_an_existing_repo(fake_hub, model_copy, tmp_path):
    assert runner.invoke(app, ["push", str(model_copy), "me/branched"]).exit_code == 0
    assert fake_hub.private["me/branched"] is False
    (model_copy / "notes.txt").write_text("v2")
    (model_copy / ".cache").mkdir()
    (model_copy / ".cache" / "junk").write_text("x")
    result = runner.invoke(app, ["push", str(model_copy), "me/branched", "--revision", "dev"])
    assert result.exit_code == 0, result.output
    assert "notes.txt" in fake_hub.repos["me/branched"]["dev"] and "notes.txt" not in fake_hub.repos["me/branched"]["main"]
    assert not any(name.startswith(".cache") for name in fake_hub.repos["me/branched"]["dev"])
    assert Embedder("me/branched", revision="dev", backend="onnx").resolved.source == "hub"


def test_push_refuses_a_broken_folder_and_completes_an_old_card(fake_hub, model_copy):
    before = len(fake_hub.requests)
    data = bytearray((model_copy / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (model_copy / "model.onnx").write_bytes(bytes(data))
    result = runner.invoke(app, ["push", str(model_copy), "me/broken"])
    assert result.exit_code == 2 and "does not match" in result.output
    assert len(fake_hub.requests) == before, "nothing may be uploaded from a folder that fails its hashes"
    result = runner.invoke(app, ["push", str(model_copy.parent / "nothing"), "me/broken"])
    assert result.exit_code == 2 and "no config.json" in result.output

    (model_copy / "model.onnx").unlink()  # a torch-only folder is fine
    (model_copy / "README.md").write_text("# my model\n\nNo front matter here.\n")
    result = runner.invoke(app, ["push", str(model_copy), "me/old-card"])
    assert result.exit_code == 0, result.output
    assert "wrote Hub metadata" in result.output and card.missing_metadata(model_copy) == []
    uploaded = fake_hub.repos["me/old-card"]["main"]["README.md"].decode()
    assert uploaded.startswith("---\n") and "library_name: audioembed" in uploaded and "No front matter here." in uploaded


def test_push_reports_a_hub_error(fake_hub, model_copy, monkeypatch):
    monkeypatch.setattr(fake_hub, "write_api", lambda path, body: (403, {"error": "You don't have the rights"}))
    result = runner.invoke(app, ["push", str(model_copy), "me/forbidden"])
    assert result.exit_code == 1 and "cannot upload" in result.output and "token" in result.output


def test_ship_model_keeps_one_card_writer(model_copy, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    with open(corpus / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source_package", "category", "duration_s", "licence"])
        w.writerow(["sonic-pi-samples", "music", "7200", "CC0"])
    (tmp_path / "eval.md").write_text("| model | set |\n|---|---|\n| x | 1 |\n")
    config = json.loads((model_copy / "config.json").read_text())  # as runs exported before v0.3.1 wrote it:
    config["extra"] = {"data": {"data_dir": str(tmp_path / "private" / "audio"), "files": 3}}  # the record inside
    (model_copy / "config.json").write_text(json.dumps(config))
    out = tmp_path / "shipped"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "ship_model.py"), str(model_copy), "--evaluation", str(tmp_path / "eval.md"),
                    "--corpus", str(corpus), "--out", str(out), "--dataset", "someone/audio-set"], check=True, capture_output=True)
    shipped = card.load(out)
    assert shipped.data.license == "other" and shipped.data.datasets == ["someone/audio-set"]
    assert shipped.data.library_name == "audioembed"
    text = shipped.text
    assert text.index("## Training data") < text.index("## Evaluation") < text.index("## Files")
    assert "| sonic-pi-samples | 2.00 |" in text and "library_name" not in text  # one front matter, not two
    assert (out / "model.onnx").read_bytes() == (model_copy / "model.onnx").read_bytes()
    extra = config.pop("extra")
    extra["data"]["data_dir"] = "audio"  # the training folder by name: no path of the training machine
    config["name"] = "shipped"  # named after the release folder (a snapshot carries its run's name)
    assert json.loads((out / "config.json").read_text()) == config  # inference numbers only
    assert json.loads((out / "training.json").read_text()) == extra  # the record beside it
    assert "private" not in (out / "config.json").read_text() + (out / "training.json").read_text() + (out / "README.md").read_text()


def test_push_reports_metadata_the_hub_rejects(fake_hub, model_copy):
    card.write(model_copy, card.load(model_copy).text, license="not-a-licence")
    result = runner.invoke(app, ["push", str(model_copy), "me/bad-licence"])
    assert result.exit_code == 1 and "not-a-licence" in result.output


def test_average_weights_writes_the_mean_of_the_folders(tiny_model_dir, tmp_path):
    """scripts/average_weights.py: float tensors are the folders' mean; the result is a model folder that loads."""
    import torch
    from safetensors.torch import load_file, save_file

    from audioembed.config import ModelConfig

    other = tmp_path / "other"
    shutil.copytree(tiny_model_dir, other)
    state = load_file(str(tiny_model_dir / "model.safetensors"))
    save_file({k: v * 3 if v.is_floating_point() else v for k, v in state.items()}, str(other / "model.safetensors"))
    out = tmp_path / "mean"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "average_weights.py"), str(out), str(tiny_model_dir), str(other)],
                   check=True, capture_output=True)
    mean = load_file(str(out / "model.safetensors"))
    floats = [k for k, v in state.items() if v.is_floating_point()]
    assert floats and all(torch.allclose(mean[k], 2 * state[k], rtol=1e-6, atol=1e-6) for k in floats)
    assert all(torch.equal(mean[k], v) for k, v in state.items() if not v.is_floating_point())
    vec = Embedder(out, backend="onnx").embed(np.zeros(16000, np.float32) + 0.1, sr=16000)  # digests check out
    assert vec.shape == (ModelConfig.load(out / "config.json").dim,) and np.isfinite(vec).all()
