"""embed() takes binary file objects (open(path, "rb"), io.BytesIO) through the file decoder; other inputs
are told what is accepted."""

import io

import numpy as np
import pytest
import soundfile as sf

from audioembed import AudioError, Embedder

from conftest import noisy, tone


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, backend="onnx", num_threads=1)


def test_file_objects_give_the_files_vector(embedder, tmp_path):
    path = tmp_path / "clip.flac"
    sf.write(path, np.stack([tone(330, 22050, 1.3), noisy(22050, 1.3)], axis=1), 22050)
    expected = embedder.embed(path)
    np.testing.assert_array_equal(embedder.embed(io.BytesIO(path.read_bytes())), expected)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(embedder.embed(f), expected)
    buf = io.BytesIO(b"prefix" + path.read_bytes())
    buf.seek(6)  # read from where it stands
    vectors = embedder.embed([buf, path])
    np.testing.assert_array_equal(vectors[0], expected)
    np.testing.assert_array_equal(vectors[1], expected)


def test_file_objects_pyav_reads(embedder, tmp_path):
    pytest.importorskip("av")
    from test_cli import write_with_pyav

    path = tmp_path / "phone.m4a"
    write_with_pyav(path, tone(440, 48000, 1.0), 48000, "aac")
    np.testing.assert_array_equal(embedder.embed(io.BytesIO(path.read_bytes())), embedder.embed(path))


def test_what_is_not_accepted_says_what_is(embedder, tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, tone(440), 16000)
    with pytest.raises(AudioError, match="<BytesIO>: sr= is only for array input"):
        embedder.embed(io.BytesIO(path.read_bytes()), sr=16000)
    with open(path) as text:
        with pytest.raises(AudioError, match="clip.wav: a text-mode file object; open the file in binary mode"):
            embedder.embed(text)
    with pytest.raises(AudioError, match=r"encoded audio as io.BytesIO\(data\)"):
        embedder.embed(path.read_bytes())
    with pytest.raises(AudioError, match=r"a sample rate is required with array input .*a binary file object"):
        embedder.embed(tone(440))
    bad = io.BytesIO(b"not audio at all")
    bad.name = "upload.wav"
    with pytest.raises(AudioError, match="^upload.wav: not a readable audio file"):
        embedder.embed(bad)
