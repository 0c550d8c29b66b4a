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


def test_card_gives_the_wall_time_of_each_session(tiny_model_dir):
    from audioembed.config import ModelConfig

    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    train = cfg.extra["training"] = {"settings": {}, "steps": 40, "samples": 1280, "processes": 1, "device": "cpu"}
    assert "Wall time" not in card.body(cfg) and "sessions" not in card.body(cfg)  # runs before sessions were recorded
    train["sessions"] = [{"from_step": 0, "to_step": 40, "wall_seconds": 5400.0}]
    assert "- Wall time: 90.0 min in one session" in card.body(cfg)
    # an old checkpoint's steps (unknown length), a resume, and a resume of a finished run (no steps: not a session)
    train["sessions"] = [{"from_step": 0, "to_step": 10, "wall_seconds": None},
                         {"from_step": 10, "to_step": 40, "wall_seconds": 6000.0},
                         {"from_step": 40, "to_step": 40, "wall_seconds": 0.5}]
    text = card.body(cfg)
    assert "Trained in 2 sessions" in text and "steps 0–10: ? min, steps 10–40: 100.0 min;" in text
    assert "100.0 min in all besides those of unknown length, the longest session 100.0 min." in text
    # each session's machine: once for a run that stayed on one, beside each session's minutes where they differ
    train["sessions"] = [{"from_step": 0, "to_step": 40, "wall_seconds": 5400.0, "machine": "CPU (AVX2), 1 thread"}]
    assert "- Wall time: 90.0 min in one session on CPU (AVX2), 1 thread (first" in card.body(cfg)
    train["sessions"] = [{"from_step": 0, "to_step": 10, "wall_seconds": 600.0, "machine": "CPU (AVX2), 1 thread"},
                         {"from_step": 10, "to_step": 40, "wall_seconds": 600.0, "machine": "CPU (AVX2), 1 thread"}]
    text = card.body(cfg)
    assert "steps 0–10: 10.0 min, steps 10–40: 10.0 min, all on CPU (AVX2), 1 thread;" in text
    train["sessions"][1]["machine"] = "CPU (AVX512), 1 thread"
    text = card.body(cfg)
    assert "steps 0–10: 10.0 min on CPU (AVX2), 1 thread, steps 10–40: 10.0 min on CPU (AVX512), 1 thread;" in text
    assert "all on" not in text


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
    (model_copy / "training.json").write_text('{"steps": 2}')
    (model_copy / ".cache").mkdir()
    (model_copy / ".cache" / "junk").write_text("x")
    result = runner.invoke(app, ["push", str(model_copy), "me/branched", "--revision", "dev"])
    assert result.exit_code == 0, result.output
    dev, main = fake_hub.repos["me/branched"]["dev"], fake_hub.repos["me/branched"]["main"]
    assert dev["training.json"] == b'{"steps": 2}' and "training.json" not in main
    assert not any(name.startswith(".cache") for name in dev)
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
    assert "added Hub metadata" in result.output and card.missing_metadata(model_copy) == []
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


MODEL_FILES = {"config.json", "model.onnx", "model.safetensors", "README.md"}


def one_line_error(result, code: int) -> str:
    """The command failed with `code` and said why on one line, with no traceback."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught exception
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_push_uploads_only_the_model_from_a_hostile_folder(fake_hub, model_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    (model_copy / "notes.txt").symlink_to(secret)
    (model_copy / "sub").mkdir()
    (model_copy / "sub" / ".env").write_text("HF_TOKEN=hf_secret")
    (model_copy / "logs").mkdir()
    (model_copy / "logs" / "train.log").write_text("step 1 loss 0.5")
    (model_copy / ".netrc").write_text("machine x password y")
    (model_copy / "draft.md").write_text("private notes")
    (model_copy / "training.json").write_text('{"steps": 10}')
    result = runner.invoke(app, ["push", str(model_copy), "me/hostile"])
    assert result.exit_code == 0, result.output
    uploaded = fake_hub.repos["me/hostile"]["main"]
    assert set(uploaded) == MODEL_FILES | {"training.json"}
    for name in uploaded:
        assert uploaded[name] == (model_copy / name).read_bytes()
        assert f"uploaded {name} ({len(uploaded[name]):,} bytes)" in result.output
    assert not any(b"hunter2" in data or b"hf_secret" in data for data in uploaded.values())

    for name in ("README.md", "model.onnx", "training.json"):  # an allowed file that is a link is refused
        folder = tmp_path / f"linked-{name}"
        shutil.copytree(model_copy, folder, symlinks=True)
        (folder / name).rename(tmp_path / f"real-{name}")
        (folder / name).symlink_to(tmp_path / f"real-{name}")
        before = len(fake_hub.requests)
        line = one_line_error(runner.invoke(app, ["push", str(folder), "me/linked"]), 2)
        assert f"{folder / name}: is a symbolic link" in line
        assert len(fake_hub.requests) == before and "me/linked" not in fake_hub.repos


def test_push_keeps_the_users_card_metadata(fake_hub, model_copy, tmp_path):
    text = card.load(model_copy).text
    user_card = ("---\n# the licence our lawyers chose\nlicense: apache-2.0\ndatasets:\n- someone/sounds\n"
                 "base_model: audioembed/audioembed-base\nlanguage:\n- en\n---\n\n" + text)
    (model_copy / "README.md").write_text(user_card)
    result = runner.invoke(app, ["push", str(model_copy), "me/user-card"])
    assert result.exit_code == 0, result.output
    local = (model_copy / "README.md").read_text()
    assert local.startswith(user_card.split("\n---\n")[0]) and local.endswith(text)  # the user's lines, untouched
    assert "library_name" in result.output and "license: unknown" not in result.output
    data = card.load(model_copy).data.to_dict()
    assert data["license"] == "apache-2.0" and data["datasets"] == ["someone/sounds"] and data["language"] == ["en"]
    assert data["base_model"] == "audioembed/audioembed-base" and data["library_name"] == "audioembed"
    assert data["pipeline_tag"] == "feature-extraction" and "audio-embedding" in data["tags"]
    assert fake_hub.repos["me/user-card"]["main"]["README.md"] == local.encode()

    complete = local.encode()  # a card with every key is uploaded as it is, and not rewritten
    result = runner.invoke(app, ["push", str(model_copy), "me/user-card"])
    assert result.exit_code == 0 and "added Hub metadata" not in result.output
    assert (model_copy / "README.md").read_bytes() == complete

    (model_copy / "README.md").write_text("---\nlicense: mit\nlibrary_name:\ntags: [mine]\n---\n\n# mine\n")
    assert runner.invoke(app, ["push", str(model_copy), "me/user-card"]).exit_code == 0
    data = card.load(model_copy).data.to_dict()  # an empty key is filled in, the others kept
    assert (data["license"], data["library_name"], data["tags"]) == ("mit", "audioembed", ["mine"])


def test_push_never_writes_through_a_linked_card(fake_hub, model_copy, tmp_path):
    outside = tmp_path / "elsewhere.md"
    outside.write_text("# not the model's\n")
    (model_copy / "README.md").unlink()
    (model_copy / "README.md").symlink_to(outside)
    line = one_line_error(runner.invoke(app, ["push", str(model_copy), "me/linked-card"]), 2)
    assert "symbolic link" in line and outside.read_text() == "# not the model's\n"
    card.write(model_copy, "# rewritten\n")  # the card writer replaces the link, inside the folder
    assert outside.read_text() == "# not the model's\n" and not (model_copy / "README.md").is_symlink()
    assert "# rewritten" in (model_copy / "README.md").read_text()


@pytest.mark.parametrize("front", ["license: [apache\n", "- a list\n- not a mapping\n", "license: mit\n\tbad: tab\n"])
def test_push_names_malformed_front_matter_in_one_line(fake_hub, model_copy, front):
    readme = model_copy / "README.md"
    readme.write_text(f"---\n{front}---\n\n# my model\n")
    before = len(fake_hub.requests)
    line = one_line_error(runner.invoke(app, ["push", str(model_copy), "me/malformed"]), 2)
    assert f"{readme}: malformed front matter" in line and "fix the YAML" in line
    assert len(fake_hub.requests) == before and readme.read_text() == f"---\n{front}---\n\n# my model\n"


def test_push_without_a_network_says_so_in_one_line(model_copy, monkeypatch):
    import socket
    import time

    from huggingface_hub import constants

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setattr(constants, "ENDPOINT", closed)
    start = time.monotonic()
    line = one_line_error(runner.invoke(app, ["push", str(model_copy), "me/offline"]), 1)
    assert time.monotonic() - start < 30
    assert line.startswith(f"error: cannot upload {model_copy} to me/offline (") and f"{closed} can be reached" in line
