"""Plant one-line bugs one at a time and check that the tests of the module catch each, every run.

Each mutant edits one spot of a temp copy of the repository (never this checkout) and runs there the test files
that import its module (found by reading their imports; a module no test imports directly is guarded by the tests
of the modules that import it). "Caught" means at least one test failed. A test earns its place by failing
(STYLE.md principle 9): a survivor means a test asserts less than it claims. Every bug fixed adds its mutant here.

    python scripts/mutants.py --check                  # every mutant applies exactly once (no tests run)
    python scripts/mutants.py                          # all of them, 3 runs each: about an hour on 2 cores
    python scripts/mutants.py --sample 3 --seed 20261206 --runs 1   # CI: a rotating sample
    python scripts/mutants.py -k hub --runs 1          # those whose name or file contains "hub"
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...] = ()  # test files to run; empty: those that import the module
    branch: str = ""  # the round-3 branch whose code it mutates, until that branch is merged
    survives: str = ""  # a known survivor: why no test here can catch it


M = Mutant
# outputs/ is reached through the CLI, which many test files import: these are the ones that run embed's jobs
STACK_TESTS = ("tests/test_cli.py", "tests/test_reliability_interrupted.py", "tests/test_security_paths.py",
               "tests/test_stack_outputs.py")
INDEX_TESTS = ("tests/test_search.py",)  # outputs/'s readers are reached through load_index and `search`
PARQUET_TESTS = ("tests/test_distributed.py", "tests/test_search.py")  # embed-cluster's shards: written, scanned, read
MUTANTS = [
    # --- issue 42's nine survivors, and the top_k tie bug ---------------------------------------------------
    M("search: ties ordered highest row first", "audioembed/search.py",
      "np.lexsort((best_index, -best_scores), axis=1)", "np.lexsort((-best_index, -best_scores), axis=1)"),
    M("search: top_k keeps whichever tied rows argpartition gives (block-size dependent)", "audioembed/search.py",
      "for i in np.flatnonzero((scores >= kth).sum(axis=1) > k):", "for i in []:"),
    M("outputs: Job.done() with any instead of all", "audioembed/outputs/tree.py",
      "return all(os.path.isfile(p) for p in self.targets())", "return any(os.path.isfile(p) for p in self.targets())",
      tests=STACK_TESTS),
    M("hub: sha256 required only for hub downloads", "audioembed/hub.py",
      'required=resolved.source != "local"', 'required=resolved.source == "hub"'),
    M("hub: the default model loses its revision pin", "audioembed/hub.py",
      "revision = revision or DEFAULT_REVISION", "revision = revision"),
    M("hub: bundled weights for any repo at our pin", "audioembed/hub.py",
      "if model_id != DEFAULT_MODEL or revision != DEFAULT_REVISION:", "if revision != DEFAULT_REVISION:"),
    M("ray: relative paths sent to the Ray workers", "audioembed/integrations/ray.py",
      "found.append(os.path.abspath(source))", "found.append(str(source))"),
    M("parquet: any .parquet makes a folder a Parquet index (a tree beside one is lost)", "audioembed/outputs/parquet.py",
      "    if not shards(path):  # a user's own .parquet", "    if not any(path.glob(\"*.parquet\")):  # a user's own .parquet",
      tests=("tests/test_search.py",)),
    M("parquet: timestamps stored as float32", "audioembed/outputs/parquet.py",
      '("timestamps", pa.list_(pa.float64()))', '("timestamps", pa.list_(pa.float32()))', tests=PARQUET_TESTS),
    M("byol: EMA weight swapped (decay for 1 - decay)", "audioembed/train/byol.py",
      "[o.detach() for o in theirs.parameters()], 1 - decay)", "[o.detach() for o in theirs.parameters()], decay)"),
    M("eval harness: the dataset's fold column ignored (k-fold instead)", "audioembed/eval/harness.py",
      "probe.plan(ds.labels, ds.split, ds.fold, folds=folds", "probe.plan(ds.labels, ds.split, None, folds=folds"),
    # --- the bugs fixed in round 3 (issues 40, 41, 42): each fix keeps its mutant --------------------------
    M("onnx: external data at */_ORT_MEM_ADDR_/* accepted", "audioembed/backends/onnx.py",
      "if not _plain_relative(location):", "if False:"),
    M("hub: a ./audioembed/audioembed-base folder replaces the default", "audioembed/hub.py",
      "    if model == DEFAULT_MODEL:  # the default name", "    if model == DEFAULT_MODEL and not os.path.isdir(model):  # the default name"),
    M("stack: parts keyed by name only, not the input's identity", "audioembed/outputs/tree.py",
      'text = f"{os.path.abspath(source)}\\0{info.st_size}\\0{info.st_mtime_ns}"', 'text = f"{source.name}"', tests=STACK_TESTS),
    M("stack: no lock on OUT (two jobs lose rows)", "audioembed/outputs/lock.py",
      "fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass", tests=STACK_TESTS),
    M("embed --frames: a failed frames write crashes the job", "audioembed/embedder.py",
      "if a.write_error is not None:  # one failed input", "if False:  # one failed input",
      tests=("tests/test_stack_outputs.py",)),
    M("embed-cluster: any .parquet in OUT taken for a shard of ours", "audioembed/outputs/parquet.py",
      "if SHARD_NAME.fullmatch(p.name) and p.is_file()", "if p.suffix == '.parquet' and p.is_file()", tests=PARQUET_TESTS),
    M("embed-cluster: a non-UTF-8 name reaches pa.array", "audioembed/outputs/parquet.py",
      'return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")', "return value", tests=PARQUET_TESTS),
    M("embed-cluster: a worker with another model writes its rows", "audioembed/integrations/ray.py",
      "if record is not None and record != self.record:", "if False:"),
    M("push: a symlinked model file is followed", "audioembed/push.py",
      "    for name in names:\n        _refuse_link(folder, name)\n", "", tests=("tests/test_card_push.py",)),
    M("hear: bool and complex tensors cast to float", "audioembed/integrations/hear.py",
      "if audio.dtype == torch.bool or audio.is_complex():", "if False:"),
    M("audio: a None input reaches the decoder", "audioembed/audio.py",
      "    if source is None:\n", "    if source is None and False:\n"),
    M("search: NaN query vectors searched silently", "audioembed/search_command.py",
      "elif not np.isfinite(v).all():", "elif False:", tests=("tests/test_search.py",)),
    M("search: escape sequences in names reach the terminal", "audioembed/search_command.py",
      'if c == "\\n" or c.isprintable():', "if True:", tests=("tests/test_search.py",)),
    M("search: a FIFO named x.npy is opened (hangs)", "audioembed/outputs/npy.py",
      "if not stat.S_ISREG(os.fstat(fd).st_mode):", "if False:", tests=INDEX_TESTS),
    M("pretrain: a silent corpus trains", "audioembed/train/loop.py",
      "if not cache.std >= MIN_STD:  # also NaN", "if False:  # also NaN"),
    M("pretrain: a checkpoint missing keys is resumed", "audioembed/train/checkpoint.py",
      "    if missing:\n        raise TrainingError(f\"{path}: not a complete checkpoint",
      "    if False:\n        raise TrainingError(f\"{path}: not a complete checkpoint"),
    M("pretrain: export's dependencies checked only at the end", "audioembed/train/command.py",
      "if missing:  # before any step", "if False:  # before any step", tests=("tests/test_train.py",)),
    M("evaluate: rows that lost different clips exit 0", "audioembed/eval/command.py",
      " or harness.uneven(cells):", ":"),
    M("cli help: flags labelled <bool>", "audioembed/console.py",
      '            param.metavar = ""\n', "            pass\n", tests=("tests/test_cli_help.py",)),
    M("cli: --version prints no version", "audioembed/console.py",
      'typer.echo(f"audioembed {__version__}")', 'typer.echo("audioembed")', tests=("tests/test_cli_help.py",)),
    # --- one or more per module ---------------------------------------------------------------------------
    M("package: TrainingError left out of __all__", "audioembed/__init__.py",
      '    "TrainingError",\n    "__version__",', '    "__version__",', tests=("tests/test_embedder.py",)),
    M("audio: stereo mixed down to its first channel", "audioembed/audio.py",
      "        a = a.mean(axis=channel_axis)", "        a = a.take(0, axis=channel_axis)"),
    M("audio: signed integers scaled by 2**bits, not 2**(bits-1)", "audioembed/audio.py",
      "            a = a.astype(np.float64) / 2 ** (8 * a.dtype.itemsize - 1)",
      "            a = a.astype(np.float64) / 2 ** (8 * a.dtype.itemsize)"),
    M("audio: the resampler returns its input", "audioembed/audio.py",
      "        if self.stream is None:\n            return block\n", "        return block\n"),
    M("card: a resumed run's sessions reported as one", "audioembed/card.py",
      "    if len(ran) == 1:\n", "    if len(ran) >= 1:\n"),
    M("train checkpoint: sessions not restored on resume", "audioembed/train/checkpoint.py",
      '    t.sessions = [dict(x) for x in state.get("sessions")', '    t.sessions = [] and [dict(x) for x in state.get("sessions")'),
    M("card: list values show only their first item", "audioembed/card.py",
      'return ", ".join(map(str, v)) or "none"', 'return ", ".join(map(str, v[:1])) or "none"'),
    M("console: failures listed but the exit status is 0", "audioembed/console.py",
      '        err(f"{len(failures)} failed{where}:")\n        for message in failures:\n            err(f"  {message}")\n        raise typer.Exit(1)',
      '        err(f"{len(failures)} failed{where}:")\n        for message in failures:\n            err(f"  {message}")\n        raise typer.Exit(0)', tests=("tests/test_cli.py",)),
    M("config: norm_std <= 0 accepted", "audioembed/config.py",
      "if self.log_eps <= 0 or self.norm_std <= 0:", "if self.log_eps <= 0:"),
    M("console: notes printed under -q", "audioembed/console.py",
      "            if not quiet:\n                err(f\"note: {w.message}\")", "            if True:\n                err(f\"note: {w.message}\")",
      tests=("tests/test_hub.py", "tests/test_default_model.py", "tests/test_cli.py")),
    M("pooling: inference pooling mean-only", "audioembed/pooling.py",
      "(self.max + self.sum / self.count)", "(self.sum / self.count)"),
    M("embedder: results reported under the mirrored index", "audioembed/embedder.py",
      "        return Result(index, name, embedding, frames)", "        return Result(len(self.items) - 1 - index, name, embedding, frames)"),
    M("errors: printable() lets control characters through", "audioembed/errors.py",
      'c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text', "c for c in text"),
    M("files: writes go straight to the final path (not atomic)", "audioembed/files.py",
      "    tmp = temp_path(path)\n", "    tmp = path\n"),
    M("model_folder: sha256 mismatch ignored", "audioembed/model_folder.py", "if actual != expected:", "if False:",
      tests=("tests/test_hub.py", "tests/test_security_weights.py")),  # they load tampered folders; no test imports model_folder for it
    M("hf/audio: datasets' stereo bytes (and files) mixed down to the first channel", "audioembed/audio.py",
      "mono = data.mean(axis=1, dtype=dtype) if data.shape[1] > 1 else data[:, 0]", "mono = data[:, 0]",
      tests=("tests/test_hf_adapter.py", "tests/test_audio.py")),
    M("index: vectors of different sizes accepted in a tree", "audioembed/outputs/tree.py",
      "if len({v.shape for v in vectors}) > 1:", "if False:", tests=INDEX_TESTS),
    M("mel: symmetric Hann window instead of periodic", "audioembed/mel.py",
      "win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)", "win = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / (cfg.win_length - 1))"),
    M("mel: filters not clipped at zero", "audioembed/mel.py",
      "return np.maximum(0.0, np.minimum(down, up))", "return np.minimum(down, up)"),
    M("outputs: --stack rows all hold the first file's vector", "audioembed/outputs/stack.py",
      "        for job, where in stacked:", "        for job, where in [stacked[0]] * len(stacked):", tests=STACK_TESTS),
    M("windows: no left context", "audioembed/windows.py",
      "m0 = max(0, r * j0 - context)", "m0 = max(0, r * j0)"),
    M("backends: an unknown backend name accepted", "audioembed/backends/__init__.py",
      "if backend not in BACKEND_FILES:", "if False:"),
    M("onnx backend: the graph's output dimension unchecked", "audioembed/backends/onnx.py",
      "if shape != (1, 8, cfg.dim):", "if False:"),
    M("openvino backend: the precision hint left unset (OpenVINO then picks bf16 itself on a CPU that has it)",
      "audioembed/backends/openvino.py", '"INFERENCE_PRECISION_HINT": precision,', ""),
    M("openvino backend: bf16 detection inverted", "audioembed/backends/openvino.py",
      'return "BF16" in ov.Core()', 'return "BF16" not in ov.Core()'),
    M("openvino backend: inputs not padded to the grid (a new shape for every last window)",
      "audioembed/backends/openvino.py", "        if padded > n:\n            wave = np.pad(", "        if False:\n            wave = np.pad("),
    M("openvino backend: bf16 runs the whole graph, frontend included, in bfloat16", "audioembed/backends/openvino.py",
      '        if precision == "bf16":\n            front, cnn = split_at_the_cnn(', '        if False:\n            front, cnn = split_at_the_cnn('),
    M("openvino backend: the frontend stage compiled in bfloat16", "audioembed/backends/openvino.py",
      '(front, {**settings, "INFERENCE_PRECISION_HINT": "f32"})', '(front, settings)'),
    M("backends: auto picks OpenVINO in bfloat16 by itself (it misses the accuracy bar)", "audioembed/backends/__init__.py",
      'else "openvino" if precision == "bf16" else "onnx"', 'else "openvino" if precision in ("bf16", "auto") else "onnx"'),
    M("backends: precision auto means bf16 on OpenVINO", "audioembed/backends/__init__.py",
      '    if precision == "auto":\n        return "f32"\n', '    if precision == "auto":\n        return "bf16" if backend == "openvino" else "f32"\n'),
    M("nn weights: weights from pytorch_model.bin via pickle", "audioembed/nn/weights.py",  # past the static check too
      "state = load_file(str(path))", 'state = torch.load(str(path.with_name("pytorch_model.bin")), **{"weights_only": False})',
      tests=("tests/test_security_weights.py",)),
    M("eval baselines: log-mel stats give the mean twice", "audioembed/eval/baselines.py",
      "return np.concatenate([mean, std]).astype(np.float32)", "return np.concatenate([mean, mean]).astype(np.float32)"),
    M("eval dataset: a fold column reported as k-fold", "audioembed/eval/dataset.py",
      'return "split" if self.split is not None else "fold" if self.fold is not None else "kfold"',
      'return "split" if self.split is not None else "kfold"'),
    M("eval features: the cache ignores a file's modification time", "audioembed/eval/features.py",
      "digest(resolved, stat.st_size, stat.st_mtime_ns)", "digest(resolved, stat.st_size)"),
    M("eval peers: a missing peer reported as installed", "audioembed/eval/peers.py",
      "if absent else None", "if not absent else None",
      survives="the peers are not installed here: their tests skip (scripts/check_peers.sh runs them in CI)"),
    M("eval harness: probe results never cached (every rerun probes every row)", "audioembed/eval/harness.py",
      "probe.score_all(feats.matrix, y, restricted, cache)", "probe.score_all(feats.matrix, y, restricted, None)",
      tests=("tests/test_eval.py",)),
    M("eval probe: cached runs reused for other splits", "audioembed/eval/probe.py",
      "    for s in splits:\n        h.update(repr((s.seed, s.fold)).encode())", "    for s in splits[:0]:\n        h.update(repr((s.seed, s.fold)).encode())",
      tests=("tests/test_eval.py",)),
    M("eval probe: the test split is the training split", "audioembed/eval/probe.py",
      "keep(self.train), keep(self.valid), keep(self.test)", "keep(self.train), keep(self.valid), keep(self.train)"),
    M("eval report: the * for rows that lost clips dropped", "audioembed/eval/report.py",
      'return text + "*" if cell.marked else text', "return text"),
    M("nn encoder: norm_mean sign flipped", "audioembed/nn/encoder.py",
      "(x - self.cfg.norm_mean)", "(x + self.cfg.norm_mean)"),
    M("nn encoder: training pooling mean-only (AudioEncoder.pool)", "audioembed/nn/encoder.py",
      "return frames.max(dim=1).values + frames.mean(dim=1)", "return frames.mean(dim=1)"),
    M("nn frontend: log offset fixed at 1e-3 instead of the config's", "audioembed/nn/frontend.py",
      "torch.matmul(self.fb, power) + self.log_eps)", "torch.matmul(self.fb, power) + 1e-3)"),
    M("nn export: no model.onnx written", "audioembed/nn/export.py",
      "    if onnx:\n", "    if False:\n"),
    M("train augment: mixup weights swapped", "audioembed/train/augment.py",
      "torch.log((1 - r) * x.exp() + r * z.exp()", "torch.log(r * x.exp() + (1 - r) * z.exp()"),
    M("train byol: the loss's sign flipped", "audioembed/train/byol.py",
      "return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)", "return 2 + 2 * F.cosine_similarity(p, z.detach(), dim=-1)"),
    M("train data: --balance-folders ignored", "audioembed/train/data.py",
      "if not balanced or len(self.group_clips) < 2:", "if True:"),
    M("train negatives: the identity returned", "audioembed/train/negatives.py",
      "    return perturb_with(x, [strategies[int(k)] for k in pick], segments, gen, shift, semitones)",
      "    return x.clone()"),
    M("train negatives: freq_roll rolls nothing", "audioembed/train/negatives.py",
      "return ((torch.arange(length) + shift) % length).float()", "return torch.arange(length).float()"),
    M("train settings: batch size 1 accepted", "audioembed/train/settings.py",
      "if self.batch_size < 2:", "if False:"),
    M("train precision: auto picks bfloat16 where it is emulated", "audioembed/train/precision.py",
      'return ("bfloat16" if native_bfloat16(device) else "float32"), None', 'return "bfloat16", None'),
    M("train control: a second Ctrl-C does not stop at once", "audioembed/train/control.py",
      "if self.requested and signum == signal.SIGINT:", "if False:"),
    M("train history: cos_pos not derived from loss_pos", "audioembed/train/history.py",
      'floats["cos_pos"] = 1 - floats[k] / 4', 'floats["cos_pos"] = 1 - floats[k] / 2'),
    M("train checkpoint: a start from weights keeps the random streams of step 0", "audioembed/train/checkpoint.py",
      "salt = 1_000_003 * (step + 1)", "salt = 0"),
    M("train settings: a config file's unknown key accepted", "audioembed/train/settings.py",
      "if key not in known and key not in RUN_KEYS:", "if False:"),
    M("pretrain: the config file overrides the flags given", "audioembed/train/command.py",
      "settings = TrainSettings(**{**inherited, **values, **given})", "settings = TrainSettings(**{**inherited, **given, **values})",
      tests=("tests/test_train.py",)),
    M("nn device: a GPU torch does not see is asked for anyway", "audioembed/nn/device.py",
      'if device.startswith("cuda") and not torch.cuda.is_available():', "if False:"),
    M("torch backend: the model left in training mode", "audioembed/backends/torch.py",
      "self.model = model.eval().to(self.device)", "self.model = model.to(self.device)", tests=("tests/test_embedder.py",)),
    M("train transfer: pinned memory asked for off CUDA", "audioembed/train/transfer.py",
      'if torch.device(device).type != "cuda" or', 'if torch.device(device).type == "cuda" or'),
    # --- this round's lead changes: readout, training record, the search's model check ----------------------
    M("nn encoder: the stacked readout puts the MLP before the conv map", "audioembed/nn/encoder.py",
      "return torch.cat([conv, self.fc(x)], dim=-1)", "return torch.cat([self.fc(x), conv], dim=-1)",
      tests=("tests/test_readout.py",)),
    M("config: an unknown readout accepted", "audioembed/config.py",
      "if self.readout not in READOUTS:", "if False:", tests=("tests/test_readout.py",)),
    M("eval command: random-init rows keyed by mlp_hidden as spelled", "audioembed/eval/command.py",
      "key = (cfg.n_mels, cfg.channels, cfg.n_blocks, cfg.hidden, cfg.dim, cfg.readout)",
      "key = (cfg.n_mels, cfg.channels, cfg.n_blocks, cfg.mlp_hidden, cfg.dim, cfg.readout)", tests=("tests/test_eval.py",)),
    M("eval command: two architectures' random-init rows share a name", "audioembed/eval/command.py",
      "label if short.count(label) == 1 else", "label if short.count(label) >= 1 else", tests=("tests/test_eval.py",)),
    M("summarize_seeds: the random-init row's full name ignored", "scripts/summarize_seeds.py",
      'f"random-init ({architecture_label(cfg, full=True)})", f"random-init', 'f"random-init ({architecture_label(cfg)})", f"random-init',
      tests=("tests/test_eval.py",)),
    M("summarize_seeds: the negatives' gain paired with another seed's twin", "scripts/summarize_seeds.py",
      'twin = runs.get(name[: -len("-neg")] + "-none")', 'twin = runs.get(min(runs))',
      tests=("tests/test_eval.py",)),
    M("card: a stacked three-block encoder called AudioNTT2022", "audioembed/card.py",
      'if cfg.n_blocks == 2 else', 'if cfg.n_blocks else', tests=("tests/test_readout.py",)),
    M("start_from: an encoder read out otherwise accepted when its shapes fit", "audioembed/train/checkpoint.py",
      'for field in ("dim", "readout"):', 'for field in ():',
      tests=("tests/test_train.py",)),
    M("pretrain --init-from: the model's architecture not inherited", "audioembed/train/command.py",
      'inherited = {k: getattr(init[1], k) for k in ENCODER} if init else {}', 'inherited = {}',
      tests=("tests/test_train.py",)),
    M("summarize_seeds: the release ties broken for the plain arm", "scripts/summarize_seeds.py",
      'key=lambda a: (a.endswith("-neg"), stats[a][0])', 'key=lambda a: (a.endswith("-none"), stats[a][0])',
      tests=("tests/test_eval.py",)),
    M("summarize_seeds: the released seed the arm's luckiest", "scripts/summarize_seeds.py",
      'return min(seeds, key=lambda r: (sum(', 'return max(seeds, key=lambda r: (sum(',
      tests=("tests/test_eval.py",)),
    M("protobuf: varints written without their continuation bit", "audioembed/backends/protobuf.py",
      "out.append(byte | 0x80)", "out.append(byte)", tests=("tests/test_stft_cut.py",)),
    M("eval features: the cache key blind to what computed the STFT", "audioembed/eval/features.py",
      '*(() if stft == "graph" else (f"stft={stft}",)), ', '', tests=("tests/test_eval.py",)),
    M("onnx: the FFT's cut graph never used", "audioembed/backends/onnx.py",
      'if stft == "fft" else None', 'if stft == "never" else None', tests=("tests/test_stft_cut.py",)),
    M("openvino: the whole graph read even where it was cut", "audioembed/backends/openvino.py",
      "        if cut is not None:\n            model = core.read_model(source)\n", "",
      tests=("tests/test_backend_openvino.py",)),
    M("encoder: the stacked conv half never scaled", "audioembed/nn/encoder.py",
      "conv = x if self.cfg.stack_scale == 1.0 else x * self.cfg.stack_scale", "conv = x", tests=("tests/test_readout.py",)),
    M("config: stack_scale accepted on an MLP readout", "audioembed/config.py",
      'if scale != 1.0 and self.readout != "stacked":', "if False:", tests=("tests/test_readout.py",)),
    M("config: stack_scale written at 1 (old folders' bytes change)", "audioembed/config.py",
      '("stack_scale", 1.0), ', "", tests=("tests/test_readout.py",)),
    M("baselines: random weights read out with the trained model's stack_scale", "audioembed/eval/baselines.py",
      "    cfg = dataclasses.replace(cfg, stack_scale=1.0)", "", tests=("tests/test_eval.py",)),
    M("card: a balanced stacked readout's factor left unsaid", "audioembed/card.py",
      'scaled = "" if cfg.stack_scale == 1.0 else', 'scaled = "" if True else', tests=("tests/test_readout.py",)),
    M("flops: the MLP's second layer counted hidden x hidden (AudioNTT2022's output is narrower)", "benchmarks/flops.py",
      "cfg.hidden * cfg.mlp_out", "cfg.hidden * cfg.hidden", tests=("tests/test_benchmarks.py",)),
    M("graph_cut: a power spectrum that depends on more than the wave is cut anyway", "audioembed/backends/graph_cut.py",
      " or _sources(varying[0], producer) - constants != {wave}:", ":", tests=("tests/test_stft_cut.py",)),
    M("graph_cut: the STFT's weights kept in the cut graph", "audioembed/backends/graph_cut.py",
      "if number == _GRAPH_INITIALIZER and _name(number, value) not in read:", "if False:",
      tests=("tests/test_stft_cut.py",)),
    M("graph_cut: the cut graph used whatever its numbers", "audioembed/backends/graph_cut.py",
      "np.abs(got - want).max() > 1e-5 *", "np.abs(got - want).max() > 1e5 *", tests=("tests/test_stft_cut.py",)),
    M("mel: the power spectrum without its window", "audioembed/mel.py",
      "frames[:, :: self.hop] * self.window,", "frames[:, :: self.hop],", tests=("tests/test_stft_cut.py",)),
    M("eval command: one random-init row for all architectures", "audioembed/eval/command.py",
      "        if key not in seen:\n", "        if not out:\n", tests=("tests/test_eval.py",)),
    M("train data: two builders of one log-mel cache at once (no lock)", "audioembed/train/data.py",
      "lock.acquire(on_wait=", "(lambda on_wait: None)(on_wait=", tests=("tests/test_train.py",)),
    M("card: the sessions' machine left out", "audioembed/card.py",
      'where = lambda m: f" on {m}" if m else ""', 'where = lambda m: ""', tests=("tests/test_card_push.py",)),
    M("train: a session's machine not recorded", "audioembed/train/loop.py",
      ', "machine": machine(self.device)}', '}', tests=("tests/test_train.py",)),
    M("outputs: records ignore the precision (bf16 vectors resume an f32 OUT)", "audioembed/outputs/record.py",
      '(precision and a.get("precision", "f32") != b.get("precision", "f32"))', 'False',
      tests=("tests/test_backend_openvino.py",)),
    M("embedder: the model record leaves bf16 out", "audioembed/embedder.py",
      '**({"precision": self.precision} if self.precision != "f32" else {})', '', tests=("tests/test_backend_openvino.py",)),
    M("search: bf16 queries refused against an f32 index", "audioembed/search_command.py",
      "same_model(idx.model, record, precision=False)", "same_model(idx.model, record)",
      tests=("tests/test_backend_openvino.py",)),
    M("parquet: a worker's refusal leaves the precision out", "audioembed/outputs/parquet.py",
      'precision = f", {record[\'precision\']}" if record.get("precision", "f32") != "f32" else ""', 'precision = ""',
      tests=("tests/test_backend_openvino.py",)),
    M("console: --precision not passed to the Embedder", "audioembed/console.py",
      "device=device, precision=precision, **kw)", "device=device, **kw)", tests=("tests/test_backend_openvino.py",)),
    M("eval dataset: the fingerprint reads names and labels, not the clips' bytes", "audioembed/eval/dataset.py",
      'content = hashlib.file_digest(f, "sha256").hexdigest()', 'content = str(path.stat().st_size)',
      tests=("tests/test_eval.py",)),
    M("eval dataset: the fingerprint ignores the folds", "audioembed/eval/dataset.py",
      "ds.fold[i] if ds.fold else ''", "''", tests=("tests/test_eval.py",)),
    M("record: training.json ignored (config.json's extra only)", "audioembed/record.py",
      'for name, key in ((RECORD, None), ("config.json", "extra")):', 'for name, key in (("config.json", "extra"),):',
      tests=("tests/test_record.py", "tests/test_default_model.py")),
    M("datasets: a None row decoded as if it were audio", "audioembed/integrations/datasets.py",
      "    if value is None:\n", "    if value is None and False:\n", tests=("tests/test_hf_adapter.py",)),
    M("search: a missing index reported as a foreign folder", "audioembed/outputs/index.py",
      "    if not path.exists():\n", "    if False:\n", tests=INDEX_TESTS),
    M("search: a tree index names its .npy, not the audio it came from", "audioembed/outputs/searchable.py",
      "return (self.sources or {}).get(name, name)", "return name", tests=("tests/test_search.py",)),
    M("embed: tree jobs not locked (two models claim an empty OUT at once)", "audioembed/outputs/command.py",
      "            if not single:  # one job at a time on OUT", "            if stack:  # one job at a time on OUT",
      tests=("tests/test_stack_outputs.py",)),
    M("embed: the progress bar advances by files, not audio seconds", "audioembed/outputs/command.py",
      "advance(weights[result.index])", "advance()", tests=("tests/test_cli.py",)),
    M("outputs: any two records with common weight files are the same model", "audioembed/outputs/record.py",
      "return all(ha[f] == hb[f] for f in common)", "return True",
      tests=("tests/test_search.py", "tests/test_stack_outputs.py")),
    # --- the house in order (issue 38): outputs/ one module per format, and the old import paths -----------------
    M("outputs names: the frames and timestamps files swapped", "audioembed/outputs/names.py",
      "return stem.with_name(stem.name + FRAMES), stem.with_name(stem.name + TIMESTAMPS)",
      "return stem.with_name(stem.name + TIMESTAMPS), stem.with_name(stem.name + FRAMES)", tests=("tests/test_cli.py",)),
    M("cli: the embed command left unregistered", "audioembed/cli.py",
      "app.command()(embed)  # outputs/command.py\n", "", tests=("tests/test_cli.py",)),
    M("index: the old import path audioembed.index left empty", "audioembed/index.py",
      "sys.modules[__name__] = index", "pass", tests=INDEX_TESTS),
    M("parquet: the old import path audioembed.parquet left empty", "audioembed/parquet.py",
      "sys.modules[__name__] = parquet", "pass", tests=INDEX_TESTS),
]


def module_name(rel: str) -> str:
    name = rel[:-3].replace("/", ".")
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


@lru_cache(maxsize=None)
def imported_modules(path: Path, package: str = "") -> frozenset[str]:
    """The audioembed modules a file imports (absolute, or relative to package), plus `audioembed.x` in strings."""
    text = path.read_text()
    found = set(re.findall(r"\baudioembed(?:\.\w+)+", text))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return frozenset(m for m in found if m == "audioembed" or m.startswith("audioembed."))


def test_files_for(rel: str, root: Path = ROOT) -> list[str]:
    """The test files that import the module; if none does, those that import a module importing it."""
    target = module_name(rel)
    tests = {p: imported_modules(p) for p in sorted((root / "tests").glob("test_*.py"))}
    direct = [str(p.relative_to(root)) for p, mods in tests.items() if target in mods]
    if direct or target == "audioembed":
        return direct
    importers = set()
    for src in (root / "audioembed").rglob("*.py"):
        src_rel = str(src.relative_to(root))
        package = module_name(src_rel) if src.name == "__init__.py" else module_name(src_rel).rpartition(".")[0]
        if src_rel != rel and target in imported_modules(src, package):
            importers.add(module_name(src_rel))
    importers.discard("audioembed")  # everything imports the package
    return [str(p.relative_to(root)) for p, mods in tests.items() if mods & importers]


def text_of(m: Mutant, root: Path = ROOT) -> tuple[str, str]:
    """The file the mutant applies to: this tree's, or its branch's while that branch is not merged."""
    text = (root / m.file).read_text() if (root / m.file).is_file() else ""
    if text.count(m.old) != 1 and m.branch:
        shown = subprocess.run(["git", "show", f"{m.branch}:{m.file}"], cwd=root, capture_output=True, text=True)
        if shown.returncode == 0 and shown.stdout.count(m.old) == 1:
            return shown.stdout, m.branch
    return text, ""


def copy_tree(dest: Path) -> None:
    """Tracked and untracked (not ignored) files: what CI would see, without .venv or caches."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(tree: Path, tests: list[str], slow: bool, show_failures: bool = False) -> tuple[int, list[str], float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("AUDIOEMBED_REQUIRE_EXTRAS", None)  # a skip here is no catch, and no failure either
    marks = [] if slow else ["-m", "not slow"]
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-W", "ignore", *marks,
                           *tests], cwd=tree, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^FAILED (\S+)", proc.stdout, re.M)))
    if show_failures and proc.returncode:
        print(proc.stdout[-6000:])
    return proc.returncode, failed, time.monotonic() - start


# docstrings and re-exports only: a package's __init__, and the old import paths of moved modules
NOTHING_TO_PLANT = {"audioembed/eval/__init__.py", "audioembed/nn/__init__.py", "audioembed/train/__init__.py",
                    "audioembed/integrations/__init__.py", "audioembed/hear.py", "audioembed/hf.py",
                    "audioembed/distributed.py", "audioembed/outputs/__init__.py"}


def check(mutants: list[Mutant], strict: bool = False) -> int:
    """Every mutant applies exactly once (here, or on its branch until that is merged) and has tests to run."""
    bad = 0
    for m in mutants:
        text, where = text_of(m)
        tests = list(m.tests) or test_files_for(m.file)
        status = "ok" if text.count(m.old) == 1 else f"its text occurs {text.count(m.old)} times: update MUTANTS"
        if where:
            status += f" (on {where}, not merged here)"
        if not tests:
            status = "no test file imports the module"
        waiting = m.branch and not status.startswith("ok") and not strict  # that branch still moves
        if waiting:
            status = f"warning: {status} (nor on {m.branch}: it moved; check again once it is merged)"
        bad += not status.startswith("ok") and not waiting
        print(f"{m.name} [{m.file}]: {status}; tests: {', '.join(Path(t).name for t in tests)}")
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "audioembed").rglob("*.py")}
    unplanted = sorted(modules - {m.file for m in MUTANTS} - NOTHING_TO_PLANT)
    print(f"\n{len(mutants)} mutants over {len({m.file for m in mutants})} files; modules without one: {unplanted or 'none'}")
    return 1 if bad else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per mutant (a flaky catch is no catch)")
    parser.add_argument("-k", default="", help="only mutants whose name or file contains this (a|b: either)")
    parser.add_argument("--sample", type=int, default=0, help="run only N mutants, drawn with --seed")
    parser.add_argument("--seed", default="0", help="the draw of --sample (CI: the date, so each day runs others)")
    parser.add_argument("--slow", action="store_true", help="also run the tests marked slow")
    parser.add_argument("--check", action="store_true", help="only check that every mutant applies; run no test")
    parser.add_argument("--list", action="store_true", help="list the mutants and the tests each would run")
    parser.add_argument("--strict", action="store_true", help="with --check: a branch's mutant must apply too (after merging)")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if any(k in m.name or k in m.file for k in args.k.split("|"))]
    if args.check or args.list:
        return check(mutants, args.strict)
    runnable = [m for m in mutants if not text_of(m)[1]]  # a branch's mutants wait for its merge
    for m in mutants:
        if m not in runnable:
            print(f"{m.name}: waits for {m.branch} to be merged (its code is not in this tree)")
    if args.sample:
        runnable = random.Random(args.seed).sample(runnable, min(args.sample, len(runnable)))
    # A shell's background job starts with SIGINT ignored, and children inherit that, which would break the
    # Ctrl-C tests; a Python handler here is reset to the default in every child the tests start.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rows, survived = [], 0
    with tempfile.TemporaryDirectory(prefix="audioembed-mutants-") as tmp:
        tree = Path(tmp) / "repo"
        copy_tree(tree)
        plan = [(m, list(m.tests) or test_files_for(m.file, tree)) for m in runnable]
        files = sorted({t for _, tests in plan for t in tests})
        code, failed, seconds = run_tests(tree, files, args.slow, show_failures=True)
        print(f"baseline ({', '.join(files)}): exit {code}, {len(failed)} failed, {seconds:.0f} s", flush=True)
        if code != 0:
            print("the unmutated tests fail; fix them first:", *failed, sep="\n  ")
            return 2
        for m, tests in plan:
            path = tree / m.file
            original = path.read_text()
            if original.count(m.old) != 1:
                print(f"{m.name}: the text to mutate occurs {original.count(m.old)} times in {m.file}; update MUTANTS")
                return 2
            path.write_text(original.replace(m.old, m.new))
            try:
                runs = [run_tests(tree, tests, args.slow) for _ in range(args.runs)]
            finally:
                path.write_text(original)
            caught = sum(code == 1 and bool(f) for code, f, _ in runs)
            survived += caught < args.runs and not m.survives
            catchers = sorted({t.split("::", 1)[1] for _, f, _ in runs for t in f})
            note = f" (known: {m.survives})" if m.survives and caught < args.runs else ""
            rows.append((m.name, f"{caught}/{args.runs}", ", ".join(catchers[:2]) + (" ..." if len(catchers) > 2 else "") + note))
            print(f"{m.name}: caught {caught}/{args.runs} in {sum(s for *_, s in runs):.0f} s{note}", flush=True)
    print("\n| planted bug | caught (runs) | first failing tests |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(map(str, row)) + " |")
    print(f"\n{len(rows) - survived} of {len(rows)} caught every run")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
