"""Run heareval's embedding step on a two-clip toy HEAR task, without TensorFlow, and check its vectors.

    pip install --no-deps heareval && pip install click intervaltree python-slugify tqdm
    python scripts/hear_toy_task.py [MODEL]      # default: models/audioembed-base

Builds the task in a temporary folder, runs `python -m audioembed.hear heareval.embeddings.runner ...`
(the line docs/evaluate.md gives) and checks that each stored vector equals Embedder.embed of its file.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from audioembed import Embedder

model = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent / "models" / "audioembed-base")
with tempfile.TemporaryDirectory() as tmp:
    task = Path(tmp) / "tasks" / "toy"
    task.mkdir(parents=True)
    t = np.arange(16000) / 16000
    (task / "task_metadata.json").write_text(json.dumps({
        "task_name": "toy", "embedding_type": "scene", "prediction_type": "multiclass", "sample_duration": 1.0,
        "splits": ["train", "test"]}))
    (task / "labelvocabulary.csv").write_text("idx,label\n0,low\n1,high\n")
    for split in ("train", "test"):
        (task / "16000" / split).mkdir(parents=True)
        for freq in (220, 880):
            sf.write(task / "16000" / split / f"{freq}.wav", (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)
        json.dump({f"{f}.wav": ["low" if f < 500 else "high"] for f in (220, 880)}, open(task / f"{split}.json", "w"))
    subprocess.run([sys.executable, "-m", "audioembed.hear", "heareval.embeddings.runner", "audioembed.hear",
                    "--model", model, "--tasks-dir", str(task.parent), "--embeddings-dir", str(Path(tmp) / "embeddings")],
                   check=True, cwd=tmp)
    embedder = Embedder(model)
    for stored in sorted((Path(tmp) / "embeddings" / "audioembed.hear" / "toy").glob("*/*.embedding.npy")):
        audio = task / "16000" / stored.parent.name / stored.name.replace(".embedding.npy", "")
        diff = float(np.abs(np.load(stored) - embedder.embed(audio)).max())
        print(f"{stored.parent.name}/{audio.name}: max |heareval - Embedder.embed| = {diff:.3g}")
        assert diff < 1e-5
print("heareval's embedding step gives Embedder's vectors")
