"""`audioembed evaluate`: datasets, cached features, baselines, the linear probe and the CLI, on generated data."""

import dataclasses
import json
import sys
from pathlib import Path

import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audioembed.cli import app
from audioembed.config import ModelConfig
from audioembed.eval import baselines, features, harness, probe, report
from audioembed.eval.dataset import DatasetError, fingerprint, load_dataset

from conftest import TINY

runner = CliRunner()
SR = 16000
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """DATA/<label>/*.wav: 3 classes x 10 clips (the `tones` set of docs/evaluate.md)."""
    sys.path.insert(0, str(REPO / "scripts" / "data"))
    from make_tones import make_tones

    return make_tones(tmp_path_factory.mktemp("eval"))


def write_manifest(path, rows, header="path,label"):
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def clips_of(root):
    return sorted((p.relative_to(root).as_posix(), p.parent.name) for p in root.rglob("*.wav"))


@pytest.fixture(scope="module")
def logmel_features(dataset_dir):
    ds = load_dataset(dataset_dir)
    extractor = baselines.logmel_stats(ModelConfig(**TINY))
    feats = features.compute(extractor, ds.paths, dataset_dir.parent / "cache-logmel")
    return ds, feats


# Datasets ---------------------------------------------------------------------------------------


def test_folder_dataset(dataset_dir):
    ds = load_dataset(dataset_dir)
    assert ds.name == "tones" and ds.protocol == "kfold"
    assert ds.classes == {"high": 10, "low": 10, "noise": 10}
    assert all(p.parent.name == label for p, label in zip(ds.paths, ds.labels))



def test_fingerprint_follows_the_clips_bytes_labels_and_folds(dataset_dir, tmp_path):
    """Two reports scored the same clips only where the fingerprints agree (a rebuilt dev set can differ in samples)."""
    import dataclasses
    import shutil

    copy = tmp_path / "tones"
    shutil.copytree(dataset_dir, copy)
    ds = load_dataset(dataset_dir)
    base = fingerprint(ds)
    assert fingerprint(load_dataset(copy)) == base  # the same clips in another place
    clip = load_dataset(copy).paths[3]
    data = bytearray(clip.read_bytes())
    data[-1] ^= 1  # one bit of one sample
    clip.write_bytes(bytes(data))
    assert fingerprint(load_dataset(copy)) != base
    other = next(label for label in ds.classes if label != ds.labels[0])
    relabelled = dataclasses.replace(ds, labels=[other] + ds.labels[1:])
    assert fingerprint(relabelled) != base
    assert fingerprint(dataclasses.replace(ds, fold=["0", "1"] * 15)) != fingerprint(dataclasses.replace(ds, fold=["1", "0"] * 15))
    clip.unlink()  # a clip that cannot be read changes it and raises nothing (evaluate reports the clip)
    assert fingerprint(load_dataset(copy)) not in (base, None)


def test_report_json_records_the_environment_and_each_datasets_fingerprint(dataset_dir):
    ds = load_dataset(dataset_dir)
    out = report.to_json([ds], [], [], {"folds": 5})
    assert out["datasets"][0]["sha256"] == fingerprint(ds)
    env = out["environment"]
    assert env["numpy"] == np.__version__ and env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert set(env) >= {"scikit-learn", "onnxruntime", "torch"}

def test_manifest_with_split_and_fold_columns(dataset_dir, tmp_path):
    rows = clips_of(dataset_dir)
    splits = ["train", "train", "valid", "test", "Train"] * 6  # case-insensitive
    m = write_manifest(dataset_dir / "split.csv", [(p, l, s) for (p, l), s in zip(rows, splits)], "path,label,split")
    ds = load_dataset(m)
    assert ds.name == "split" and ds.protocol == "split" and ds.split.count("train") == 18
    assert ds.paths[0] == dataset_dir / rows[0][0]  # relative to the manifest's folder
    m = write_manifest(tmp_path / "manifest.csv", [(dataset_dir / p, l, i % 3) for i, (p, l) in enumerate(rows)], "path,label,fold")
    ds = load_dataset(tmp_path)  # a folder with a manifest.csv uses it
    assert ds.protocol == "fold" and sorted(set(ds.fold)) == ["0", "1", "2"] and ds.name == tmp_path.name
    (dataset_dir / "split.csv").unlink()


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty class", "class 'empty' has no audio files"),
        ("single class", "needs at least 2 classes (only 'a')"),
        ("missing file", "1 listed files do not exist"),
        ("no label column", "needs columns 'path' and 'label'"),
        ("no test split", "has no 'test' rows"),
        ("bad split", "'dev' is not train, valid or test"),
        ("loose files", "audio files directly in the dataset folder"),
        ("duplicate", "is listed twice"),
        ("nothing", "no such dataset"),
    ],
)
def test_bad_datasets_are_refused_clearly(tmp_path, case, message):
    root = tmp_path / "d"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        sf.write(root / label / "x.wav", np.zeros(1600, np.float32), SR)
    target = root
    if case == "empty class":
        (root / "empty").mkdir()
    elif case == "single class":
        target = write_manifest(tmp_path / "m.csv", [("d/a/x.wav", "a")])
    elif case == "missing file":
        target = write_manifest(tmp_path / "m.csv", [("d/a/x.wav", "a"), ("d/b/gone.wav", "b")])
    elif case == "no label column":
        target = write_manifest(tmp_path / "m.csv", [("d/a/x.wav", "a")], "path,class")
    elif case == "no test split":
        target = write_manifest(tmp_path / "m.csv", [("d/a/x.wav", "a", "train"), ("d/b/x.wav", "b", "valid")], "path,label,split")
    elif case == "bad split":
        target = write_manifest(tmp_path / "m.csv", [("d/a/x.wav", "a", "dev")], "path,label,split")
    elif case == "loose files":
        sf.write(root / "stray.wav", np.zeros(1600, np.float32), SR)
    elif case == "duplicate":
        target = write_manifest(tmp_path / "m.csv", [("d/a/x.wav", "a"), ("d/a/x.wav", "b")])
    elif case == "nothing":
        target = tmp_path / "absent"
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(target)


# Baselines and features -------------------------------------------------------------------------


def test_logmel_stats_equals_the_models_frontend(dataset_dir):
    import torch

    from audioembed import audio
    from audioembed.nn import AudioEncoder

    cfg = ModelConfig(**TINY)
    wave = audio.load(dataset_dir / "noise" / "noise0.wav")
    padded = np.pad(wave, cfg.n_fft // 2, mode="reflect")
    with torch.no_grad():
        reference = AudioEncoder(cfg).normalised_logmel(torch.from_numpy(padded)[None])[0, 0].numpy()
    stats = baselines.LogMelStats(cfg)(wave)
    assert stats.shape == (2 * cfg.n_mels,)
    np.testing.assert_allclose(stats[: cfg.n_mels], reference.mean(axis=1), atol=2e-3)
    np.testing.assert_allclose(stats[cfg.n_mels :], reference.std(axis=1), atol=2e-3)


class Counting:
    """Wraps an extractor and counts the clips it is asked for."""

    def __init__(self, inner):
        self.inner, self.name, self.key, self.asked = inner, inner.name, inner.key, 0

    def vectors(self, paths):
        self.asked += len(paths)
        yield from self.inner.vectors(paths)


def test_cache_is_reused_and_invalidated_by_edits(dataset_dir, tmp_path):
    ds = load_dataset(dataset_dir)
    extractor = Counting(baselines.logmel_stats(ModelConfig(**TINY)))
    first = features.compute(extractor, ds.paths, tmp_path)
    entries = sorted(tmp_path.rglob("*.npy"))
    stamps = [p.stat().st_mtime_ns for p in entries]
    assert (first.computed, first.reused, extractor.asked, len(entries)) == (30, 0, 30, 30)
    second = features.compute(extractor, ds.paths, tmp_path)
    assert (second.computed, second.reused, extractor.asked) == (0, 30, 30)  # nothing recomputed
    assert [p.stat().st_mtime_ns for p in entries] == stamps
    np.testing.assert_array_equal(second.matrix, first.matrix)
    edited = tmp_path / "edited"
    edited.mkdir()
    sf.write(edited / "x.wav", np.zeros(SR // 2, np.float32), SR)
    third = features.compute(extractor, ds.paths[:3] + [edited / "x.wav"], tmp_path)
    assert (third.computed, third.reused) == (1, 3)
    sf.write(edited / "x.wav", np.ones(SR // 2, np.float32) * 0.1, SR)  # same path, new content
    import os

    os.utime(edited / "x.wav", ns=(1, 1))
    assert features.compute(extractor, [edited / "x.wav"], tmp_path).computed == 1


def test_failures_are_reported_by_name(dataset_dir, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
    paths = load_dataset(dataset_dir).paths[:2] + [bad]
    feats = features.compute(baselines.logmel_stats(ModelConfig(**TINY)), paths, tmp_path / "cache")
    assert feats.ok.tolist() == [0, 1] and feats.matrix.shape == (2, 2 * TINY.get("n_mels", 64))
    assert len(feats.failures) == 1 and "bad.wav" in feats.failures[0]


# Probe ------------------------------------------------------------------------------------------


def test_protocol_splits():
    labels = ["a"] * 6 + ["b"] * 6
    runs = probe.plan(labels, folds=3, seeds=2)
    assert len(runs) == 6
    for seed in (0, 1):
        tests = np.concatenate([s.test for s in runs if s.seed == seed])
        assert sorted(tests) == list(range(12))  # each clip tested once per seed
    assert all(not set(s.train) & set(s.test) for s in runs)
    fold = ["x", "y", "z"] * 4
    runs = probe.plan(labels, fold=fold, seeds=2)
    assert [s.fold for s in runs] == ["x", "y", "z"] * 2
    assert all(set(np.asarray(fold)[s.test]) == {s.fold} and s.fold not in np.asarray(fold)[s.train] for s in runs)
    split = ["train"] * 4 + ["valid", "test"] + ["train"] * 4 + ["valid", "test"]
    (only,) = probe.plan(labels, split=split, seeds=3)  # nothing random left: one run
    assert only.valid.tolist() == [4, 10] and only.test.tolist() == [5, 11]
    assert len(probe.plan(labels, split=[s.replace("valid", "train") for s in split], seeds=3)) == 3
    with pytest.raises(probe.ProbeError, match="use --folds 6"):
        probe.plan(labels, folds=7)


def test_probe_separates_classes_and_shuffled_labels_score_chance(logmel_features):
    ds, feats = logmel_features
    y = np.asarray(ds.labels)
    splits = probe.plan(ds.labels, folds=5, seeds=3)
    real = [probe.score(feats.matrix, y, s) for s in splits]
    assert np.mean([r.accuracy for r in real]) > 0.95
    assert all(r.C in probe.C_GRID and r.n_train + r.n_test == 30 for r in real)
    shuffled = np.random.default_rng(1).permutation(y)
    control = [probe.score(feats.matrix, shuffled, s) for s in probe.plan(list(shuffled), folds=5, seeds=3)]
    assert np.mean([r.accuracy for r in control]) < 0.6  # chance is 1/3


def test_probe_and_logmel_stats_run_the_blas_single_threaded(logmel_features, monkeypatch, tmp_path):
    """BLAS threads on top of busy cores made the probe ~30x slower: the package limits them itself."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> int:
        return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=0)

    seen = []
    fit, logmel = probe._fit, baselines.LogMelStats.logmel

    def fit_spy(X, y, C):
        seen.append(blas_threads())
        return fit(X, y, C)

    def logmel_spy(self, frames):
        seen.append(blas_threads())
        return logmel(self, frames)

    monkeypatch.setattr(probe, "_fit", fit_spy)
    monkeypatch.setattr(baselines.LogMelStats, "logmel", logmel_spy)
    ds, feats = logmel_features
    probe.score(feats.matrix, np.asarray(ds.labels), probe.plan(ds.labels, folds=3, seeds=1)[0])
    assert len(seen) == len(probe.C_GRID) + 1 and set(seen) == {1}
    seen.clear()
    features.compute(baselines.logmel_stats(ModelConfig(**TINY)), ds.paths[:3], tmp_path)
    assert len(seen) == 3 and set(seen) == {1}


class Fails:
    """An extractor that fails on some clips and yields the others from a matrix, last clip first (any order is allowed)."""

    name, key = "fails-some", "k"

    def __init__(self, matrix, bad):
        self.matrix, self.bad = matrix, set(bad)

    def vectors(self, paths):
        for i in reversed(range(len(paths))):
            yield (i, None, f"{paths[i]}: broken") if i in self.bad else (i, self.matrix[i], None)


def expected_runs(X, labels, splits, dropped):
    """The runs a row should give: each split without the dropped clips, renumbered over the clips that are left,
    worked out here independently of Split.restricted."""
    keep = np.setdiff1d(np.arange(len(labels)), dropped)
    y = np.asarray(labels)[keep]

    def over_keep(idx):
        return None if idx is None else np.searchsorted(keep, idx[~np.isin(idx, dropped)])

    return [probe.score(X[keep], y, probe.Split(s.seed, s.fold, over_keep(s.train), over_keep(s.valid), over_keep(s.test)))
            for s in splits]


def test_harness_keeps_splits_when_a_row_loses_clips(logmel_features, tmp_path):
    """Clips lost mid-class (not the first one, where an off-by-one hides) leave every other clip in its split
    and with its own label: the runs are exactly those of the splits without them."""
    ds, feats = logmel_features
    dropped = [4, 15, 27]  # one inside each class of 10
    (cell,) = harness.run([ds], [harness.Row("fails-some", "model", Fails(feats.matrix, dropped))], tmp_path, folds=3, seeds=2)
    assert cell.clips_used == 27 and cell.left_out == dropped
    assert cell.failures == sorted(f"{ds.paths[i]}: broken" for i in dropped)
    splits = probe.plan(ds.labels, folds=3, seeds=2)
    assert cell.runs == expected_runs(feats.matrix, ds.labels, splits, dropped)
    assert [r.n_test for r in cell.runs] == [len(np.setdiff1d(s.test, dropped)) for s in splits]
    assert sum(r.n_test for r in cell.runs) == 2 * 27 and cell.mean > 0.9


def test_probe_results_are_reused_only_for_the_same_features_labels_and_splits(logmel_features, tmp_path, monkeypatch):
    """A rerun with one model added probes that model only: a row's runs come from the cache when its features,
    labels and splits are unchanged, and are recomputed when any of them changes (or the entry is damaged)."""
    ds, feats = logmel_features
    fitted = []
    real = probe.score
    monkeypatch.setattr(probe, "score", lambda X, y, split, *a: fitted.append(split) or real(X, y, split, *a))

    def cell(matrix, seeds=2, lines=None):
        fitted.clear()
        extractor = Fails(matrix, [])
        extractor.key = features.digest(matrix.tobytes())  # the embedding cache keeps vectors by extractor key
        (c,) = harness.run([ds], [harness.Row("r", "model", extractor)], tmp_path, folds=3, seeds=seeds,
                           log=([] if lines is None else lines).append)
        return c, len(fitted)

    first, n = cell(feats.matrix)
    assert n == 6
    lines = []
    again, n = cell(feats.matrix, lines=lines)
    assert n == 0 and again.runs == first.runs and "probe cached" in lines[0]
    changed = feats.matrix.copy()
    changed[0, 0] += 1e-3  # one value of one clip
    assert cell(changed)[1] == 6
    assert cell(feats.matrix, seeds=3)[1] == 9  # other splits
    for entry in (tmp_path / "probes").iterdir():
        entry.write_text("{damaged")
    damaged, n = cell(feats.matrix)
    assert n == 6 and damaged.runs == first.runs


def test_harness_uses_the_datasets_fold_column(tmp_path):
    """A fold column groups clips (one recording, one instrument) that must never sit on both sides of a split.
    Here the vectors say only which group a clip is from: leave-one-group-out cannot guess an unseen group's
    label, while k-fold, with the group's other clips in training, scores near 100 %. Unequal, unordered
    folds with names k-fold never gives; clips failing mid-fold."""
    from audioembed.eval.dataset import Dataset

    groups = {"east": ("a", 3), "north": ("a", 5), "south": ("b", 4), "west": ("b", 6)}
    order = np.random.default_rng(0).permutation([g for g, (_, n) in groups.items() for _ in range(n)])
    fold = [str(g) for g in order]
    labels = [groups[g][0] for g in fold]
    names = sorted(groups)
    rng = np.random.default_rng(1)
    X = np.stack([np.eye(4)[names.index(g)] + 0.01 * rng.standard_normal(4) for g in fold]).astype(np.float32)
    paths = [tmp_path / "absent" / f"clip{i}.wav" for i in range(len(fold))]
    ds = Dataset("groups", tmp_path / "manifest.csv", paths, labels, fold=fold)
    dropped = [7, 12]  # fail mid-fold
    (cell,) = harness.run([ds], [harness.Row("fails-some", "model", Fails(X, dropped))], tmp_path / "cache", folds=3, seeds=2)
    splits = probe.plan(labels, fold=fold, seeds=2)
    assert [r.fold for r in cell.runs] == names * 2
    sizes = {g: sum(1 for i, f in enumerate(fold) if f == g and i not in dropped) for g in names}
    assert [r.n_test for r in cell.runs] == [sizes[g] for g in names] * 2
    assert cell.runs == expected_runs(X, labels, splits, dropped)
    assert cell.mean < 0.5  # no group leaked into its own training data
    leaky = expected_runs(X, labels, probe.plan(labels, folds=3, seeds=2), dropped)
    assert np.mean([r.accuracy for r in leaky]) > 0.9  # what ignoring the column would have reported


# CLI --------------------------------------------------------------------------------------------


@pytest.mark.slow  # an integration check: .ci/run runs it (pytest -m slow)
def test_cli_table_and_json(dataset_dir, tiny_model_dir, tmp_path):
    fold_manifest = write_manifest(
        tmp_path / "folds.csv", [(dataset_dir / p, l, i % 3) for i, (p, l) in enumerate(clips_of(dataset_dir))], "path,label,fold"
    )
    out = tmp_path / "res.json"
    args = ["evaluate", str(dataset_dir), str(fold_manifest), "-m", str(tiny_model_dir), "-m", str(tiny_model_dir), "--baselines", "logmel-stats,random-init",
            "--folds", "3", "--seeds", "2", "--json", str(out), "--cache", str(tmp_path / "cache"), "--backend", "onnx", "--batch-size", "4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[0] == "| model | tones (3 classes, 30 clips) | folds (3 classes, 30 clips) |"
    assert [line.split(" | ")[0] for line in table[2:]] == [f"| {tiny_model_dir}", "| logmel-stats", "| random-init"]
    assert all(" ± " in cell for line in table[2:] for cell in line.split(" | ")[1:])
    report = json.loads(out.read_text())
    assert report["settings"]["folds"] == 3 and report["settings"]["backend"] == "onnx"
    assert [d["protocol"] for d in report["datasets"]] == ["kfold", "fold"]
    assert [r["name"] for r in report["rows"]] == [str(tiny_model_dir), "logmel-stats", "random-init"]
    assert len(report["results"]) == 6
    by = {(r["row"], r["dataset"]): r for r in report["results"]}
    assert len(by[("logmel-stats", "tones")]["runs"]) == 6 and len(by[("logmel-stats", "folds")]["runs"]) == 6
    assert {r["fold"] for r in by[("random-init", "folds")]["runs"]} == {"0", "1", "2"}
    assert by[("logmel-stats", "tones")]["accuracy_mean"] > 0.9
    row = by[("logmel-stats", "tones")]
    assert row["accuracy_mean"] == pytest.approx(np.mean([r["accuracy"] for r in row["runs"]]))
    assert row["features"] == {"computed": 30, "reused": 0}
    assert by[("logmel-stats", "folds")]["features"] == {"computed": 0, "reused": 30}  # same files, same cache
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and again.stdout == result.stdout  # same numbers, all from the cache
    assert all(r["features"]["computed"] == 0 for r in json.loads(out.read_text())["results"])


def test_cli_errors(dataset_dir, tmp_path, monkeypatch):
    (tmp_path / "one" / "a").mkdir(parents=True)
    sf.write(tmp_path / "one" / "a" / "x.wav", np.zeros(1600, np.float32), SR)
    result = runner.invoke(app, ["evaluate", str(tmp_path / "one"), "-m", "none", "--baselines", "logmel-stats"])
    assert result.exit_code == 2 and "needs at least 2 classes" in result.output
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "--baselines", "mfcc"])
    assert result.exit_code == 2 and "unknown baseline 'mfcc'" in result.output
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "-m", "none", "--baselines", "none"])
    assert result.exit_code == 2 and "nothing to evaluate" in result.output
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "--folds", "11", "-m", "none", "--baselines", "logmel-stats"])
    assert result.exit_code == 2 and "use --folds 10" in result.output
    result = runner.invoke(app, ["evaluate", str(dataset_dir), str(dataset_dir), "-m", "none", "--baselines", "logmel-stats"])
    assert result.exit_code == 2 and "two datasets are named tones" in result.output
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "--backend", "tpu", "--baselines", "logmel-stats"])
    assert result.exit_code == 2 and "unknown backend 'tpu'" in result.output
    cache = ["--cache", str(tmp_path / "cache"), "--folds", "2", "--seeds", "1"]
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "-m", str(tmp_path / "nomodel"), "--baselines", "logmel-stats", *cache])
    assert result.exit_code == 1 and "| logmel-stats |" in result.stdout  # the table still comes
    assert f"{tmp_path / 'nomodel'}: error: " in result.stdout and "not a model folder" in result.stdout
    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "-m", "none", "--baselines", "logmel-stats", *cache])
    assert result.exit_code == 2 and 'pip install ".[eval]"' in result.output


def test_cli_a_clip_no_row_can_read_is_explained_and_exits_0(dataset_dir, tmp_path):
    """1 of 118 clips unreadable gave exit 1 after a complete table, and an unexplained `*`."""
    import shutil

    data = shutil.copytree(dataset_dir, tmp_path / "tones")
    (data / "high" / "high4b.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")  # mid-class
    result = runner.invoke(app, ["evaluate", str(data), "-m", "none", "--baselines", "logmel-stats", "--folds", "3",
                                 "--seeds", "1", "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.stdout.splitlines() if line.startswith("| logmel-stats")]
    assert row.endswith("* |")
    assert "*: clips that could not be embedded were left out of that cell's runs (see the notes below)." in result.stdout
    assert ("- logmel-stats on tones*: 1 of 31 clips could not be embedded and were left out of its runs" in result.stdout)
    assert f"logmel-stats: {data / 'high' / 'high4b.wav'}" in result.stderr


def test_cli_rows_that_lost_different_clips_exit_1(dataset_dir, tiny_model_dir, tmp_path, monkeypatch):
    """When one row loses a clip another row embedded, the rows are not compared on the same clips: exit 1."""
    calls = []
    call = baselines.LogMelStats.__call__

    def fails_on_the_fifth(self, wave):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("planted")
        return call(self, wave)

    monkeypatch.setattr(baselines.LogMelStats, "__call__", fails_on_the_fifth)
    result = runner.invoke(app, ["evaluate", str(dataset_dir), "-m", str(tiny_model_dir), "--backend", "onnx",
                                 "--baselines", "logmel-stats", "--folds", "3", "--seeds", "1", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1, result.output
    rows = {line.split(" | ")[0]: line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert rows["| logmel-stats"].endswith("* |") and not rows[f"| {tiny_model_dir}"].endswith("* |")
    assert "- tones: the rows lost different clips, so their numbers are not on the same clips" in result.stdout
    assert "planted" in result.stderr


def test_random_init_is_the_models_architecture_with_fixed_weights(tiny_model_dir, tmp_path):
    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    folder = baselines.random_init_folder(cfg, tmp_path / "a")
    assert baselines.random_init_folder(cfg, tmp_path / "a") == folder  # built once
    built = ModelConfig.load(folder / "config.json")
    assert (built.dim, built.channels, built.norm_mean, built.name) == (cfg.dim, cfg.channels, cfg.norm_mean, "random-init")
    other = baselines.random_init_folder(cfg, tmp_path / "b")
    assert (other / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    assert (folder / "model.safetensors").read_bytes() != (tiny_model_dir / "model.safetensors").read_bytes()
    # A balanced stacked readout's stack_scale was measured on trained weights: random ones are read out at 1.
    stacked = ModelConfig(name="s", channels=8, n_blocks=2, dim=8 * 16 + 24, readout="stacked")
    balanced = baselines.random_init_folder(dataclasses.replace(stacked, stack_scale=0.3), tmp_path / "c")
    assert ModelConfig.load(balanced / "config.json").stack_scale == 1.0
    assert balanced.name == baselines.random_init_folder(stacked, tmp_path / "c").name


def test_peers_when_installed(dataset_dir):
    from audioembed.eval import peers

    available = [name for name in peers.PEERS if peers.missing(name) is None]
    absent = {name: peers.missing(name) for name in peers.PEERS if name not in available}
    if absent and os.environ.get("AUDIOEMBED_REQUIRE_PEERS"):  # scripts/check_peers.sh: a skip would hide a break
        pytest.fail(f"AUDIOEMBED_REQUIRE_PEERS is set but {absent}")
    if not available:
        pytest.skip("no peer installed (pip install resemblyzer torchcrepe)")
    paths = load_dataset(dataset_dir).paths[::10]
    for name in available:
        out = list(peers.load(name).vectors(paths))
        assert [i for i, _, _ in out] == [0, 1, 2] and all(e is None for _, _, e in out)
        vectors = np.stack([v for _, v, _ in out])
        assert vectors.shape == (3, {"resemblyzer": 256, "crepe-tiny": 256}[name]) and np.isfinite(vectors).all()
        assert np.ptp(vectors, axis=0).max() > 0  # different clips, different vectors


def test_random_init_works_without_onnx_installed(dataset_dir, tmp_path, monkeypatch):
    """[torch] + [eval] do not include onnx: the baseline must not need it to export (auto runs it on torch)."""
    monkeypatch.setitem(__import__("sys").modules, "onnx", None)  # any import of onnx now fails
    cache = tmp_path / "cache"
    args = ["evaluate", str(dataset_dir), "-m", "none", "--baselines", "random-init", "--folds", "2", "--seeds", "1", "--cache", str(cache)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| random-init | " in result.stdout and " ± " in result.stdout
    folder = next((cache / "models").iterdir())
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "training.json"]
    args[5] = "logmel-stats,random-init"
    result = runner.invoke(app, args + ["--backend", "onnx"])
    assert result.exit_code == 0 and "random-init: skipped: " in result.stdout and "pip install onnx" in result.stdout


def test_a_failed_random_init_build_leaves_nothing_behind(dataset_dir, tmp_path, monkeypatch):
    from audioembed.nn import export

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(export, "export_onnx", broken)
    cache = tmp_path / "cache"
    args = ["evaluate", str(dataset_dir), "-m", "none", "--baselines", "logmel-stats,random-init", "--folds", "2", "--seeds", "1",
            "--cache", str(cache), "--backend", "onnx"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "| logmel-stats | " in result.stdout  # the other rows still come
    assert "random-init: error: " in result.stdout and "exporter exploded" in result.stdout
    assert not (cache / "models").exists() or list((cache / "models").iterdir()) == []


def test_docs_example_is_what_the_cli_prints_for_it():
    """docs/evaluate.md's example: the rows and skip notes `audioembed evaluate tones` gives with no peers installed."""
    from audioembed.eval import peers
    from audioembed.eval.command import DEFAULT_BASELINES, parse_baselines

    doc = (REPO / "docs" / "evaluate.md").read_text()
    block = doc.split("```\n| model | tones", 1)[1].split("```", 1)[0]
    rows = [line.split(" | ")[0].lstrip("| ") for line in block.splitlines()[2:] if line.startswith("| ")]
    assert rows == ["default", *parse_baselines(DEFAULT_BASELINES)]
    notes = [line for line in block.splitlines() if line.startswith("- ")]
    if any(peers.missing(name) is None for name in peers.PEERS):
        pytest.skip("a peer is installed here; the example was run without them")
    assert notes == [f"- {name}: skipped: {peers.missing(name)}" for name in peers.PEERS]


def test_random_init_follows_each_evaluated_architecture_and_readout(dataset_dir, tiny_model_dir, tmp_path):
    """A readout alone moves random weights' scores, so each architecture gets a random-init row of its own,
    built from that model's config (readout, blocks, widths) and read out the same way."""
    from conftest import build_tiny_model

    stacked = tmp_path / "stacked"
    build_tiny_model(stacked, readout="stacked", n_blocks=2, dim=8 * 16 + 16, mlp_hidden=24)
    args = ["evaluate", str(dataset_dir), "-m", str(tiny_model_dir), "-m", str(stacked), "--baselines", "random-init",
            "--folds", "2", "--seeds", "1", "--cache", str(tmp_path / "cache"), "--json", str(tmp_path / "r.json")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    names = [r["name"] for r in json.loads((tmp_path / "r.json").read_text())["rows"]]
    assert names == [str(tiny_model_dir), str(stacked), "random-init (3 blocks, mlp 32-d)", "random-init (2 blocks, stacked 144-d)"]
    built = sorted((tmp_path / "cache" / "models").glob("random-init-*"))
    configs = sorted((ModelConfig.load(f / "config.json") for f in built), key=lambda c: c.dim)
    assert [(c.readout, c.n_blocks, c.dim, c.hidden) for c in configs] == [("mlp", 3, 32, 32), ("stacked", 2, 144, 24)]


def test_random_init_rows_are_one_per_network_as_built_and_never_share_a_name():
    """The same network spelled two ways (mlp_hidden unset, or set to the MLP's output width) and normalised a
    little differently is one random-init row; two networks that the short label names alike get full names
    (a report is keyed by row name: the second row overwrote the first in the table and the rule)."""
    from audioembed.eval.command import _architectures, random_init_names

    implicit = ModelConfig(readout="stacked", dim=1024, norm_mean=-1.24955)
    explicit = ModelConfig(readout="stacked", dim=1024, mlp_hidden=512, norm_mean=-1.24949)
    assert implicit.hidden == explicit.hidden == 512
    narrow = ModelConfig(readout="stacked", dim=1024, channels=32)  # also "3 blocks, stacked 1024-d"
    archs = _architectures([ModelConfig(), explicit, implicit, narrow])
    assert archs == [ModelConfig(), explicit, narrow]
    names = random_init_names(archs)
    assert len(set(names)) == 3 and names[0] == "random-init (3 blocks, mlp 512-d)"
    assert names[1:] == ["random-init (64 mels, 3 blocks × 64 channels, MLP 512, stacked 1024-d)",
                         "random-init (64 mels, 3 blocks × 32 channels, MLP 768, stacked 1024-d)"]
    assert random_init_names([narrow]) == ["random-init"]


# scripts/summarize_seeds.py: the quality issue's release rule over training seeds -------------------------------

def _seed_report(rows: dict) -> dict:
    """An `evaluate --json` report with the given {row: (kind, [accuracy per dataset])}."""
    names = ["a", "b"]
    return {"datasets": [{"name": n} for n in names],
            "rows": [{"name": r, "kind": kind} for r, (kind, _) in rows.items()],
            "results": [{"row": r, "dataset": n, "accuracy_mean": acc[i]}
                        for r, (_, acc) in rows.items() for i, n in enumerate(names)]}


@pytest.mark.parametrize("case, verdict", [
    ("clear gain", "passes the rule"),
    ("gain within the seeds' spread", "does not pass the rule"),
    ("one set below random weights", "does not pass the rule"),
    ("one set far below the reference", "does not pass the rule"),
    ("one seed", "undecided"),
    ("random weights under their full name", "does not pass the rule"),
])
def test_summarize_seeds_applies_the_release_rule(tmp_path, tiny_model_dir, case, verdict):
    import shutil
    import subprocess

    runs = tmp_path / "runs"
    seeds = {"clear gain": [(0.80, 0.90), (0.81, 0.91), (0.80, 0.92)],
             "gain within the seeds' spread": [(0.60, 0.90), (0.80, 0.91), (0.95, 0.92)],
             "one set below random weights": [(0.80, 0.855), (0.81, 0.855), (0.80, 0.855)],
             "one set far below the reference": [(0.99, 0.70), (0.99, 0.71), (0.99, 0.70)],
             "one seed": [(0.80, 0.90)],
             "random weights under their full name": [(0.80, 0.90), (0.81, 0.91), (0.80, 0.92)]}[case]
    rows = {"v030": ("model", [0.75, 0.85]), "random-init": ("baseline", [0.70, 0.86])}
    if case == "random weights under their full name":  # evaluate named two architectures alike: the runs' own row counts
        from audioembed.eval.command import architecture_label

        full = f"random-init ({architecture_label(ModelConfig.load(tiny_model_dir / 'config.json'), full=True)})"
        rows = {"v030": ("model", [0.75, 0.85]), "random-init (3 blocks, mlp 32-d)": ("baseline", [0.70, 0.86]),
                full: ("baseline", [0.70, 0.95])}
    for i, acc in enumerate(seeds):
        name = f"arch-s{42 + i}-neg"
        shutil.copytree(tiny_model_dir, runs / name)
        rows[str(runs / name)] = ("model", list(acc))
    report = tmp_path / "eval.json"
    report.write_text(json.dumps(_seed_report(rows)))
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "summarize_seeds.py"), str(report), "--runs", str(runs),
                          "--rule", "v030"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert f"| arch-neg ({len(seeds)}) |" in out.stdout  # the seeds of an arm are one row
    assert f"arch-neg ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}): {verdict}" in out.stdout, out.stdout
    if case == "one set below random weights":  # the margin that rounding to one decimal would hide
        assert "(3) b: 85.5 vs random-init 86.0: -0.50: FAIL" in out.stdout, out.stdout
    if verdict == "passes the rule":  # seed 43 (81 / 91) is the arm's typical run: means 80.3 / 91.0
        assert f"release: arch-neg (mean 85.7 ± 0.6), its seed nearest the arm's per-set means: {runs / 'arch-s43-neg'}" \
            in out.stdout, out.stdout
    else:
        assert "release: no arm passes the rule; the reference stays the shipped model" in out.stdout, out.stdout


@pytest.mark.parametrize("plain_lead, ships", [(0.3, "arch-neg"), (3.0, "arch-none")])
def test_summarize_seeds_releases_the_negatives_arm_unless_the_plain_one_leads_by_more_than_the_spread(plain_lead, ships):
    """Two arms pass: the higher mean ships, but a lead within the seeds' spread goes to the negatives arm."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("summarize_seeds", REPO / "scripts" / "summarize_seeds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    datasets = ["a", "b"]
    cells = {"arch-s42-neg": {"a": 80.0, "b": 90.0}, "arch-s43-neg": {"a": 81.0, "b": 91.0},
             "arch-s44-neg": {"a": 79.0, "b": 89.0}}  # mean 85.0, spread 1.0
    for name, jitter in [("arch-s42-none", 0.0), ("arch-s43-none", 0.2), ("arch-s44-none", -0.2)]:
        cells[name] = {"a": 80.0 + plain_lead + jitter, "b": 90.0 + plain_lead + jitter}
    passed = {"arch-neg": ["arch-s42-neg", "arch-s43-neg", "arch-s44-neg"],
              "arch-none": ["arch-s42-none", "arch-s43-none", "arch-s44-none"]}
    line = mod.release(passed, cells, datasets)
    assert line.startswith(f"release: {ships} "), line
    assert line.endswith(f"arch-s42-{ships[5:]}"), line  # seed 42 is the middle run of either arm


def test_summarize_seeds_states_the_negatives_gain_paired_by_seed(tmp_path):
    import subprocess

    rows = {"v030": ("model", [0.75, 0.85]),
            "runs/arch-s42-neg": ("model", [0.80, 0.90]), "runs/arch-s42-none": ("model", [0.78, 0.91]),
            "runs/arch-s43-neg": ("model", [0.82, 0.90]), "runs/arch-s43-none": ("model", [0.78, 0.90]),
            "runs/arch-s44-neg": ("model", [0.99, 0.99])}  # no twin yet: not paired
    report = tmp_path / "eval.json"
    report.write_text(json.dumps(_seed_report(rows)))
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "summarize_seeds.py"), str(report)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    # per seed: a +2.0 and +4.0, b -1.0 and 0.0, mean +0.5 and +2.0
    assert ("arch: negatives minus --negatives none, paired by seed (2 seeds): a +3.0 ± 1.4, b -0.5 ± 0.7, "
            "mean +1.2 ± 1.1") in out.stdout, out.stdout


def test_the_cache_key_follows_what_computed_the_stft(tiny_model_dir):
    """Vectors from the graph's DFT convolution and from scipy's FFT differ in their last bits: a probe moves with
    such bits, so a table never mixes cached vectors of the one with fresh vectors of the other."""
    from audioembed import Embedder
    from audioembed.eval.features import ModelExtractor

    embedder = Embedder(tiny_model_dir, backend="onnx")
    assert embedder.backend.stft == "fft"
    fft = ModelExtractor("m", embedder).key
    embedder.backend.stft = "graph"
    assert ModelExtractor("m", embedder).key != fft
