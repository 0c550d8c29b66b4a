"""The model card (a model folder's README.md): Hub metadata as YAML front matter, then what the model is,
how it was trained and its files' hashes. The one writer used by export, pretrain, ship_model and push."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from . import record
from .config import ModelConfig

TAGS = ["audio", "audio-embedding", "self-supervised", "byol-a", "onnx", "safetensors"]
REQUIRED = ("license", "library_name", "tags", "pipeline_tag")
SPACES = {"projection": "in the views' projection", "representation": "in the representation",
          "head": "in a projector head of their own"}


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v)) or "none"
    return str(v)


def body(cfg: ModelConfig, history: list[dict] | None = None) -> str:
    """The card's Markdown: description, usage, training facts (when config.json has them), file hashes."""
    lines = [
        f"# {cfg.name}", "",
        f"An [audioembed](https://github.com/audioembed/audioembed) model: {cfg.dim}-d clip embeddings "
        f"(mean + max over {cfg.frame_seconds * 1000:g} ms frames) from {cfg.sample_rate / 1000:g} kHz log-mel "
        f"({cfg.n_mels} bands, {cfg.f_min:g}–{cfg.f_max:g} Hz) and {_architecture(cfg)}.", "",
        "```python", "from audioembed import Embedder", f'embedder = Embedder("path/to/{cfg.name}")  # the model folder, or its hub repo id',
        'vector = embedder.embed("clip.wav")', "```",
    ]
    rec = record.TrainingRecord.from_dict(cfg.extra)  # a folder being written carries its record in memory
    if rec.training:
        lines += ["", *_training(cfg, rec, history or [])]
    lines += ["", "## Files", "", "| file | sha256 |", "|---|---|",
              *[f"| {name} | `{digest}` |" for name, digest in sorted(cfg.sha256.items())], ""]
    return "\n".join(lines)


def _architecture(cfg: ModelConfig) -> str:
    """The encoder in words: BYOL-A v2's AudioNTT2022 (two conv blocks, read out stacked) or BYOL-A's AudioNTT2020
    (three), whose MLP readout may also be stacked with its conv map."""
    blocks = f"{cfg.n_blocks} conv blocks × {cfg.channels} channels, an MLP of {cfg.hidden} hidden units"
    if cfg.readout == "stacked":
        scaled = "" if cfg.stack_scale == 1.0 else f", times {cfg.stack_scale:g} so both halves weigh alike in cosine,"
        style = "AudioNTT2022-style CNN" if cfg.n_blocks == 2 else "AudioNTT2020-style CNN read out as AudioNTT2022 is"
        return (f"an {style} ({blocks}; each frame stacks the last conv map's {cfg.conv_dim} values"
                f"{scaled} beside the MLP's {cfg.mlp_out})")
    return f"an AudioNTT2020-style CNN ({blocks}; each frame is the MLP's {cfg.mlp_out} outputs)"


def _scale(v) -> str:
    """A random-resize-crop range, (0.6, 1.5) -> '0.6×–1.5×'."""
    return "×–".join(map(_fmt, v or ("?", "?"))) + "×"


def _lr_after(s: dict) -> str:
    """' (from 3e-05)' where the decay starts from a lower rate than lr (lr_after), else ''."""
    return f" (from {_fmt(s['lr_after'])})" if s.get("lr_after") not in (None, s.get("lr")) else ""


def _started_from(init: dict | None) -> list[str]:
    """The card's line for a run that started from exported weights (`audioembed pretrain --init-from`)."""
    if not init:
        return []
    own = (f"; those weights' own training: {init['its_steps']} steps, {init.get('its_samples', '?')} crops"
           + (f", {init['its_train_seconds'] / 60:.1f} min" if "its_train_seconds" in init else "")) if "its_steps" in init else ""
    return [f"- Started from the encoder weights of `{init['model']}` (model.safetensors sha256 `{init['sha256'][:16]}…`) "
            f"at step {init['step']}, not from a checkpoint: the projector, predictor, optimizer state and mixup bank "
            f"started anew. The training time above is this run's{own}."]


def _sessions(sessions: list[dict]) -> list[str]:
    """The card's line on how the run's steps were split over processes (stopped, then `--resume`d)."""
    ran = [x for x in sessions if x.get("to_step", 0) > x.get("from_step", 0)]
    if not ran:
        return []
    walls = [x.get("wall_seconds") for x in ran]
    minutes = lambda w: "? min" if w is None else f"{w / 60:.1f} min"
    machines = [x.get("machine") for x in ran]
    one_machine = len(set(machines)) == 1
    where = lambda m: f" on {m}" if m else ""
    if len(ran) == 1:
        return [f"- Wall time: {minutes(walls[0])} in one session{where(machines[0])} (first step to last checkpoint)."]
    # Each session's machine beside its minutes where they differ (a resume on a faster CPU is not a faster recipe).
    each = ", ".join(f"steps {x['from_step']}–{x['to_step']}: {minutes(w)}{'' if one_machine else where(m)}"
                     for x, w, m in zip(ran, walls, machines))
    if one_machine and machines[0]:
        each += f", all{where(machines[0])}"
    known = [w for w in walls if w is not None]
    total = f"{sum(known) / 60:.1f} min in all" + (" besides those of unknown length" if len(known) < len(walls) else "")
    return [f"- Trained in {len(ran)} sessions, each resumed from the last one's checkpoint (weights, optimizer "
            f"moments, random streams and mixup bank: the steps an uninterrupted run would take); wall time, first "
            f"step to last checkpoint: {each}; {total}, the longest session {max(known, default=0) / 60:.1f} min."]


def _training(cfg: ModelConfig, rec: record.TrainingRecord, history: list[dict]) -> list[str]:
    train, data, s = rec.training, rec.data, rec.settings
    method = ("BYOL-A with adversarial position-perturbed negatives "
              f"({_fmt(s.get('negatives'))}; hardest of {s.get('neg_candidates', 1)}, pushed away "
              f"{SPACES.get(s.get('neg_space', 'projection'), s.get('neg_space'))}; λ={s.get('neg_lambda')}, margin={s.get('neg_margin')})"
              ) if s.get("negatives") else "BYOL-A (no negatives)"
    crops = (f"random resize crops of {_scale(s.get('rrc_freq_scale'))} on the frequency axis and "
             f"{_scale(s.get('rrc_time_scale'))} on time; lr {_fmt(s.get('lr', '?'))}"
             + (f", half-cosine decay{_lr_after(s)} from {_fmt(s['lr_decay_from'])} of the run" if s.get("lr_decay_from", 1.0) < 1.0 else "")
             + ("; folders drawn equally" if s.get("balance_folders") else ""))
    lines = [
        "## Training", "",
        f"- Method: {method}, self-supervised, no labels; trained with `audioembed pretrain`.",
        f"- Views: {crops}.",
        f"- Data: {data.get('data_dir', '?')}: {data.get('files', '?')} files, {data.get('clips', '?')} clips, "
        f"{_fmt(data.get('hours', '?'))} h (log-mel mean {cfg.norm_mean:.4f}, std {cfg.norm_std:.4f}).",
        f"- Steps: {train.get('steps')} × batch {s.get('batch_size')} × {train.get('processes')} process(es) = "
        f"{train.get('samples')} crops of {s.get('crop_frames')} frames; device {train.get('device')}"
        + (f", {train['precision']} arithmetic." if train.get("precision") else "."),
        f"- Training time: {train.get('train_seconds', 0) / 60:.1f} min ({_fmt(train.get('samples_per_s'))} samples/s).",
        *_sessions(train.get("sessions") or []),
        *_started_from(train.get("init_from")),
        "", "| setting | value |", "|---|---|",
        *[f"| {k} | {_fmt(v)} |" for k, v in sorted(s.items())],
    ]
    if history:
        first, last = history[0], history[-1]
        lines += ["", "Similarities (representation cosine on a fixed probe batch; pos: two views, neg: a position-perturbed copy):", "",
                  "| step | loss | probe pos | probe neg |", "|---|---|---|---|",
                  *[f"| {r['step']} | {r['loss']:.4f} | {r['probe_pos']:.3f} | {r['probe_neg']:.3f} |" for r in (first, last)]]
    return lines


def write(folder: str | Path, text: str, *, license: str = "unknown", datasets: Iterable[str] = (), tags: Iterable[str] = ()) -> Path:
    """Write README.md: `text` (Markdown, without front matter) under Hub metadata made by huggingface_hub.

    license: a Hub licence id ("mit", "cc-by-4.0", "other", ...); "unknown" until the weights' owner says.
    datasets: Hub dataset ids the model was trained on, if any.
    """
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        license=license, library_name="audioembed", pipeline_tag="feature-extraction",
        tags=list(dict.fromkeys([*TAGS, *tags])), datasets=list(datasets) or None,
    )
    path = Path(folder) / "README.md"
    _replace(path, str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{text.lstrip()}")))
    return path


def _replace(path: Path, text: str) -> None:
    """Write the card by a rename inside its folder: a symlink at `path` is replaced, never written through."""
    from .files import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"))


def load(folder: str | Path):
    """The card in a model folder as huggingface_hub's ModelCard (.data: front matter, .text: the Markdown).

    Raises ModelError (one line, naming the file) when its front matter is not a YAML mapping.
    """
    from huggingface_hub import ModelCard

    from .errors import ModelError

    import yaml

    path = Path(folder) / "README.md"
    try:
        return ModelCard.load(path)
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: front matter that is not a mapping
        raise ModelError(f"{path}: malformed front matter ({_one_line(exc)}); "
                         "fix the YAML between the '---' lines") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def missing_metadata(folder: str | Path) -> list[str]:
    """Front-matter fields the Hub needs that the folder's card lacks (all of them when it has none)."""
    data = load(folder).data.to_dict()
    return [key for key in REQUIRED if not data.get(key)]


def complete(folder: str | Path, cfg: ModelConfig) -> dict:
    """Give the folder's card the Hub metadata it lacks, keeping every key and line the user wrote.

    Returns the keys added ({} when the card had them all). No card: one is written from config.json.
    A README.md that is a symlink is refused: the card is only ever written inside the folder.
    """
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    from .errors import ModelError

    path = Path(folder) / "README.md"
    if path.is_symlink():
        raise ModelError(f"{path}: is a symbolic link; replace it with a regular file (push writes and uploads only "
                         "files inside the model folder)")
    defaults = {"license": "unknown", "library_name": "audioembed", "pipeline_tag": "feature-extraction", "tags": TAGS}
    if not path.exists():
        write(path.parent, body(cfg))
        return {key: defaults[key] for key in REQUIRED}
    data = load(folder).data.to_dict()
    added = {key: defaults[key] for key in REQUIRED if not data.get(key)}
    if not added:
        return {}
    content = path.read_text(encoding="utf-8")
    block = REGEX_YAML_BLOCK.search(content)
    extra = yaml.safe_dump(added, sort_keys=False, allow_unicode=True).rstrip("\n")
    if block is None:  # no front matter: put it on top
        content = f"---\n{extra}\n---\n\n{content}"
    elif not any(key in (yaml.safe_load(block.group(2)) or {}) for key in added):  # only new keys: add lines
        content = content[: block.end(2)] + "\n" + extra + content[block.end(2):]
    else:  # a key present but empty (`license:`): write the merged mapping, the user's keys first
        merged = yaml.safe_dump({**yaml.safe_load(block.group(2)), **added}, sort_keys=False, allow_unicode=True)
        content = content[: block.start(2)] + merged.rstrip("\n") + content[block.end(2):]
    _replace(path, content)
    return added
