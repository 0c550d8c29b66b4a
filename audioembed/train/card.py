"""The model card written next to the weights: what was trained, on what, how, and the files' hashes."""

from __future__ import annotations

from ..config import ModelConfig


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "none"
    return str(v)


def model_card(cfg: ModelConfig, history: list[dict]) -> str:
    train, data = cfg.extra.get("training", {}), cfg.extra.get("data", {})
    s = train.get("settings", {})
    method = ("BYOL-A with adversarial position-perturbed negatives "
              f"({_fmt(s.get('negatives'))}; λ={s.get('neg_lambda')}, margin={s.get('neg_margin')}, "
              f"{s.get('neg_segments')} segments)") if s.get("negatives") else "BYOL-A (no negatives)"
    lines = [
        f"# {cfg.name}", "",
        f"An [audioembed](https://github.com/audioembed/audioembed) model: {cfg.dim}-d clip embeddings "
        f"(mean + max over 80 ms frames) from 16 kHz log-mel ({cfg.n_mels} bands, {cfg.f_min:g}–{cfg.f_max:g} Hz) "
        f"and an AudioNTT2020-style CNN ({cfg.n_blocks} blocks × {cfg.channels} channels).", "",
        "```python", "from audioembed import Embedder", f'embedder = Embedder("path/to/{cfg.name}")  # the model folder, or its hub repo id',
        'vector = embedder.embed("clip.wav")', "```", "",
        "## Training", "",
        f"- Method: {method}, self-supervised, no labels; trained with `audioembed pretrain`.",
        f"- Data: {data.get('data_dir', '?')}: {data.get('files', '?')} files, {data.get('clips', '?')} clips, "
        f"{_fmt(data.get('hours', '?'))} h (log-mel mean {cfg.norm_mean:.4f}, std {cfg.norm_std:.4f}).",
        f"- Steps: {train.get('steps')} × batch {s.get('batch_size')} × {train.get('processes')} process(es) = "
        f"{train.get('samples')} crops of {s.get('crop_frames')} frames; device {train.get('device')}.",
        f"- Training time: {train.get('train_seconds', 0) / 60:.1f} min ({_fmt(train.get('samples_per_s'))} samples/s).",
        "", "| setting | value |", "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in sorted(s.items())],
    ]
    if history:
        first, last = history[0], history[-1]
        lines += ["", "Similarities (representation cosine on a fixed probe batch; pos: two views, neg: a position-perturbed copy):", "",
                  "| step | loss | probe pos | probe neg |", "|---|---|---|---|",
                  *[f"| {r['step']} | {r['loss']:.4f} | {r['probe_pos']:.3f} | {r['probe_neg']:.3f} |" for r in (first, last)]]
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|",
              *[f"| {name} | `{digest}` |" for name, digest in sorted(cfg.sha256.items())], ""]
    return "\n".join(lines)
