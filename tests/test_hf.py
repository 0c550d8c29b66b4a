"""Hugging Face datasets: `ds.map(embedder.hf_map_fn(), batched=True)` on a dataset built from generated audio."""

import numpy as np
import pytest
import soundfile as sf

from audioembed import AudioDecodeError, Embedder

from conftest import noisy, tone

datasets = pytest.importorskip("datasets")


@pytest.fixture
def files(tmp_path):
    paths = [tmp_path / "a.wav", tmp_path / "b.flac", tmp_path / "c.ogg", tmp_path / "d.wav"]
    sf.write(paths[0], noisy(16000, 2.0), 16000)
    sf.write(paths[1], np.stack([tone(440, 44100, 1.0), noisy(44100, 1.0)], axis=1), 44100)
    sf.write(paths[2], tone(880, 8000, 3.0), 8000)
    sf.write(paths[3], noisy(22050, 0.5, seed=3), 22050)
    return paths


def audio_dataset(values):
    """An Audio column left undecoded, as `cast_column("audio", Audio(decode=False))` gives it."""
    ds = datasets.Dataset.from_dict({"audio": values, "label": list(range(len(values)))})
    return ds.cast_column("audio", datasets.Audio(decode=False))


@pytest.fixture
def embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, backend="onnx", num_threads=1)


def test_embedding_column_from_bytes_and_paths(files, embedder):
    values = [{"bytes": p.read_bytes(), "path": p.name} for p in files[:2]] + [{"bytes": None, "path": str(p)} for p in files[2:]]
    ds = audio_dataset(values)
    out = ds.map(embedder.hf_map_fn(), batched=True, batch_size=3)
    assert out.column_names == ["audio", "label", "embedding"] and out.features["embedding"].feature.dtype == "float32"
    np.testing.assert_array_equal(np.array(out["embedding"], np.float32), embedder.embed(files))  # as from the files

    parallel = ds.map(embedder.hf_map_fn(column="vec"), batched=True, batch_size=2, num_proc=2)
    np.testing.assert_array_equal(np.array(parallel["vec"], np.float32), np.array(out["embedding"], np.float32))


def test_decoded_audio_column(embedder):
    clips = [(noisy(16000, 1.5), 16000), (tone(440, 48000, 0.7), 48000)]
    ds = datasets.Dataset.from_dict({"sound": [{"array": x, "sampling_rate": sr} for x, sr in clips]})
    out = ds.map(embedder.hf_map_fn(audio_column="sound"), batched=True)
    expected = embedder.embed([x for x, _ in clips], sr=[sr for _, sr in clips])
    np.testing.assert_array_equal(np.array(out["embedding"], np.float32), expected)


def test_unreadable_bytes_name_the_row(embedder):
    ds = audio_dataset([{"bytes": b"RIFF garbage", "path": "clips/bad.wav"}])
    with pytest.raises(AudioDecodeError, match="clips/bad.wav: not a readable audio file"):
        ds.map(embedder.hf_map_fn(), batched=True)


def test_with_indices_names_the_dataset_row(files, embedder):
    values = [{"bytes": p.read_bytes(), "path": p.name} for p in files[:2]] + [{"bytes": b"RIFF junk", "path": "clips/bad.wav"}]
    ds = audio_dataset(values)
    with pytest.raises(AudioDecodeError, match=r"^row 2: clips/bad.wav: not a readable audio file"):
        ds.map(embedder.hf_map_fn(), batched=True, batch_size=2, with_indices=True)
    with pytest.raises(AudioDecodeError, match=r"^batch row 0: clips/bad.wav: not a readable audio file"):
        ds.map(embedder.hf_map_fn(), batched=True, batch_size=2)
