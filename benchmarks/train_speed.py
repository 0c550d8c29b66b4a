"""Samples/s of `audioembed pretrain`'s default configuration on this machine's cores.

Runs the real Trainer (views, negatives, losses, EMA, optimizer) on a synthetic log-mel cache,
with and without negatives, and reports samples/s and the share of the machine's sgemm rate
(torch float32 and bfloat16 matmul) that the model FLOPs per sample reach. FLOPs are counted as
benchmarks/flops.py does (2 per multiply-add of every conv and linear layer), for every pass a
training sample costs: online forward + backward (x3) of two views and of the negative, target
forward (x1) of two views, plus the projector/predictor MLPs, plus (hardest of k > 1) a forward
pass of the anchors and their k candidates.

    python benchmarks/train_speed.py                 # default settings, 2 threads
    python benchmarks/train_speed.py --profile       # also a torch.profiler table of one arm
    python benchmarks/train_speed.py --set precision=float32   # one setting for both arms
    python benchmarks/train_speed.py --vs precision=bfloat16   # and side by side with another setting
    python benchmarks/train_speed.py --ref 5d9ffbc   # side by side with the code of a git commit
    python benchmarks/train_speed.py --device cuda --set batch_size=256   # on a GPU

With --ref, the trainer of that commit is imported from `git archive` (as package
`audioembed_ref`) and its rounds alternate with the current code's in the same process, so a
busy machine slows both alike and the ratio holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from audioembed.config import ModelConfig  # noqa: E402
from audioembed.train.data import MelCache  # noqa: E402
from audioembed.train.history import read_stats  # noqa: E402
from audioembed.train.loop import Trainer  # noqa: E402
from audioembed.train.settings import TrainSettings  # noqa: E402


def fake_cache(folder: Path, clips: int = 512, frames: int = 1000, n_mels: int = 64) -> MelCache:
    """A log-mel cache of random frames: the trainer's cost does not depend on the values."""
    rng = np.random.default_rng(0)
    data = rng.normal(-6, 3, size=(clips * frames, n_mels)).astype(np.float16)
    data.tofile(folder / "frames.f16")
    np.save(folder / "offsets.npy", np.arange(0, clips * frames + 1, frames, dtype=np.int64))
    meta = dict(version=1, data_dir="synthetic", files=clips, failed=[], clips=clips, frames=clips * frames,
                seconds=clips * frames / 100, n_mels=n_mels, log_eps=1e-6, mean=-6.0, std=3.0, groups=["."])
    np.save(folder / "groups.npy", np.zeros(clips, dtype=np.int32))
    (folder / "meta.json").write_text(json.dumps(meta))
    return MelCache(folder)


def _linear_flops(i: int, o: int) -> float:
    return 2.0 * i * o


def flops_per_sample(s: TrainSettings, cfg: ModelConfig) -> dict[str, float]:
    """Model FLOPs one training crop costs (forward x1, backward x2 of what trains); cfg: the trained encoder's."""
    f, t, c_in, enc = cfg.n_mels, s.crop_frames, 1, 0.0
    for _ in range(cfg.n_blocks):
        enc += 2.0 * f * t * cfg.channels * c_in * 9
        f, t, c_in = f // 2, t // 2, cfg.channels
    enc += t * (_linear_flops(cfg.conv_dim, cfg.hidden) + _linear_flops(cfg.hidden, cfg.mlp_out))
    proj = _linear_flops(s.dim, s.proj_hidden) + _linear_flops(s.proj_hidden, s.proj_dim)
    pred = _linear_flops(s.proj_dim, s.proj_hidden) + _linear_flops(s.proj_hidden, s.proj_dim)
    online = 2 * 3 * (enc + proj + pred)  # two views, forward + backward
    target = 2 * (enc + proj)  # two views, forward only
    neg_head = 0.0 if s.neg_space == "representation" else proj + pred
    k = s.neg_candidates
    scoring = (k + 1) * enc if k > 1 else 0.0  # hardest of k: anchors + k candidates, forward only
    negs = scoring + 3 * (enc + neg_head) if s.negatives else 0.0
    return {"encoder_forward": enc, "total": online + target + negs}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def matmul_rate(dtype: torch.dtype, device: str = "cpu", reps: int = 10, budget_s: float = 5.0) -> float:
    """Best of `reps` square matmuls (fewer once `budget_s` is spent: an emulated bfloat16 matmul takes
    20 s on an AVX2-only CPU): 2048² on a CPU, 8192² on a GPU (big enough to reach its peak)."""
    n = 8192 if device.startswith("cuda") else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    sync(device)
    best, start = float("inf"), time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s:
            break
    return 2.0 * n**3 / best


def cpu_description() -> str:
    """The CPU's name and whether it has bfloat16 in hardware (what precision "auto" decides on)."""
    from audioembed.train.precision import native_bfloat16

    try:
        name = torch.cpu.get_capabilities().get("cpu_name", "?")
    except (AttributeError, RuntimeError):
        name = "?"
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}, bfloat16 in hardware: {'yes' if native_bfloat16('cpu') else 'no'}"


def package_at(ref: str, tmp: Path) -> str:
    """Name under which the package as it was at git commit `ref` imports (extracted into tmp).

    `ref` may also be a folder holding an `audioembed/` package (e.g. `git archive REV audioembed`
    unpacked there), for a machine that gets the code without its git history."""
    import shutil
    import subprocess

    root = Path(__file__).resolve().parents[1]
    if (Path(ref) / "audioembed").is_dir():
        shutil.copytree(Path(ref) / "audioembed", tmp / "audioembed")
    else:
        archive = subprocess.run(["git", "-C", str(root), "archive", ref, "audioembed"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "audioembed").rename(tmp / "audioembed_ref")
    sys.path.insert(0, str(tmp))
    return "audioembed_ref"


def import_ref(ref: str, tmp: Path):
    """(Trainer, TrainSettings) of the package as it was at git commit `ref`."""
    import importlib

    name = package_at(ref, tmp)
    loop = importlib.import_module(f"{name}.train.loop")
    return loop.Trainer, importlib.import_module(f"{name}.train.settings").TrainSettings


def make_trainers(settings: dict, cache: MelCache, device: str, ref=None, ref_name: str = "ref",
                  vs: dict | None = None, vs_name: str = "vs") -> dict:
    """The current trainer and, given ref's (Trainer, TrainSettings), the old one, from the same settings;
    given `vs` overrides, also the current code with them (e.g. another precision).

    Both must get every override: an old trainer left at its default batch would have its samples
    counted at the current one's batch (a bug that once printed the old code 4-8x too fast)."""
    trainers = {"current": Trainer(TrainSettings(**settings), cache, "bench", device, log=lambda m: None)}
    if ref:
        trainers[ref_name] = ref[0](ref[1](**settings), cache, "bench", device, log=lambda m: None)
    if vs:
        trainers[vs_name] = Trainer(TrainSettings(**{**settings, **vs}), cache, "bench", device, log=lambda m: None)
    return trainers


def measure(trainers: dict, batch: int, warmup: int, steps: int, rounds: int, device: str = "cpu") -> dict[str, list[float]]:
    """Rounds of `steps` steps, alternating between the trainers: samples/s per round."""
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.train_step()
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            sync(device)
            t0 = time.perf_counter()
            # As fit runs it: the statistics read back once per round (a log row), where the trainer can.
            if "readback" in inspect.signature(trainer.train_step).parameters:
                read_stats([trainer.train_step(readback=False) for _ in range(steps)])
            else:
                for _ in range(steps):
                    trainer.train_step()
            sync(device)
            rates[name].append(steps * batch / (time.perf_counter() - t0))
    return rates


def parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        field = {f.name: f for f in dataclasses.fields(TrainSettings)}[key]
        out[key] = value if field.type in ("str", str) else json.loads(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda (the trainer and the matmul peak on the GPU)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20, help="steps per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainSettings overrides for both arms")
    ap.add_argument("--profile", action="store_true", help="print a torch.profiler table for the negatives arm")
    ap.add_argument("--vs", nargs="*", default=[], metavar="KEY=VALUE",
                    help="also time the current code with these overrides on top, alternating rounds (e.g. precision=bfloat16)")
    ap.add_argument("--ref", help="also time the trainer of this git commit (or of the audioembed/ in this folder), alternating rounds")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides, vs = parse_set(args.set), parse_set(args.vs)
    with tempfile.TemporaryDirectory() as tmp:
        cache = fake_cache(Path(tmp))
        dev = args.device
        rate32, rate16 = matmul_rate(torch.float32, dev), matmul_rate(torch.bfloat16, dev)
        where = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else f"{args.threads} threads"
        out = {"device": where, "cpu": cpu_description(), "threads": args.threads, "overrides": overrides, "vs": vs, "matmul_gflops": {"float32": rate32 / 1e9, "bfloat16": rate16 / 1e9}, "arms": {}}
        print(f"CPU: {out['cpu']}")
        print(f"torch matmul: float32 {rate32 / 1e9:.3g} GFLOP/s, bfloat16 {rate16 / 1e9:.3g} GFLOP/s ({where})")
        ref = import_ref(args.ref, Path(tmp)) if args.ref else None
        vs_name = "with " + " ".join(args.vs)
        for arm, neg in (("negatives", {}), ("byol-a (--negatives none)", {"negatives": "none"})):
            trainers = make_trainers({**overrides, **neg}, cache, dev, ref, f"at {args.ref}", vs, vs_name)
            s = trainers["current"].s
            rates = measure(trainers, s.batch_size, args.warmup, args.steps, args.rounds, dev)
            fl = flops_per_sample(s, trainers["current"].cfg)["total"]
            med = statistics.median(rates["current"])
            out["arms"][arm] = {"samples_per_s": rates, "median": med, "gflop_per_sample": fl / 1e9,
                                "precision": trainers["current"].precision,
                                "fraction_of_matmul_f32": med * fl / rate32, "fraction_of_matmul_bf16": med * fl / rate16}
            print(f"{arm:28s} {med:7.1f} samples/s, {trainers['current'].precision} (rounds: {', '.join(f'{r:.1f}' for r in rates['current'])}) | "
                  f"{fl / 1e9:.2f} GFLOP/sample = {med * fl / 1e9:.0f} GFLOP/s: {100 * med * fl / rate32:.0f} % of f32 matmul, "
                  f"{100 * med * fl / rate16:.0f} % of bf16 matmul")
            for name, key, label in ((f"at {args.ref}", "ratio_to_ref", "ref"), (vs_name, "ratio_to_vs", "vs")):
                if name not in rates:
                    continue
                ratios = [a / b for a, b in zip(rates["current"], rates[name])]
                out["arms"][arm][key] = ratios
                out["arms"][arm][f"samples_per_s_{label}"] = rates[name]
                print(f"{'':28s} {name}: {statistics.median(rates[name]):.1f} samples/s (rounds: "
                      f"{', '.join(f'{r:.1f}' for r in rates[name])}); current / {label} per round: "
                      f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}x)")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            trainer = Trainer(TrainSettings(**overrides), cache, "bench", dev, log=lambda m: None)
            for _ in range(args.warmup):
                trainer.train_step()
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.startswith("cuda") else [])
            with profile(activities=acts) as prof:
                read_stats([trainer.train_step(readback=False) for _ in range(5)])
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
