"""The benchmark's own arithmetic: the FLOP count against the exported graph, and the stability verdict."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import flops  # noqa: E402
import report  # noqa: E402
from audioembed.config import ModelConfig  # noqa: E402


def test_product_flops_from_shapes():
    # a 3x3 conv, 8 -> 16 channels, 4 groups: each output element takes 8/4 * 9 multiply-adds
    assert flops.product_flops("Conv", [[1, 8, 10, 20], [16, 2, 3, 3]], [1, 16, 10, 20]) == 2.0 * 16 * 10 * 20 * 2 * 9
    # (2, 5, 7) @ (7, 3): K = 7 from the activation, also when the weight is not listed (pre-packed)
    assert flops.product_flops("MatMul", [[2, 5, 7]], [2, 5, 3]) == 2.0 * 2 * 5 * 3 * 7
    assert flops.product_flops("Gemm", [[7, 5], [7, 3]], [5, 3], trans_a=True) == 2.0 * 5 * 3 * 7


@pytest.fixture(scope="module", params=["mlp", "stacked"])
def model16(tmp_path_factory, request):
    """Channels a multiple of every NCHWc block (8 with AVX2, 16 with AVX-512): ONNX Runtime pads nothing. Also
    AudioNTT2022's shape: a stacked readout, an MLP wider than its output, two blocks."""
    from conftest import build_tiny_model

    out = tmp_path_factory.mktemp("models") / f"tiny16-{request.param}"
    shape = {"stacked": dict(n_blocks=2, readout="stacked", mlp_hidden=96, dim=16 * 16 + 40)}.get(request.param, {})
    build_tiny_model(out, channels=16, **shape)
    return out


@pytest.mark.parametrize("seconds", [3.0, 2.37])
def test_analytic_count_matches_the_graph_and_what_onnxruntime_ran(model16, seconds):
    cfg = ModelConfig.load(model16 / "config.json")
    c = flops.check(model16 / "model.onnx", cfg, seconds)
    assert c["graph"]["total"] == pytest.approx(c["analytic_in_graph"], rel=1e-9)
    assert c["runtime"]["total"] == pytest.approx(c["analytic_in_graph"], rel=1e-9)
    assert c["agree"] and c["worst_relative_difference"] < 1e-9 and not c["runtime_only"]
    assert any(n["flops"] and n["ms"] > 0 for n in c["profile"])


def test_runtime_padding_is_named(tiny_model_dir):
    # 8 channels: padded to 16 where NCHWc blocks are 16 wide (AVX-512), not where they are 8 (AVX2)
    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    c = flops.check(tiny_model_dir / "model.onnx", cfg, 3.0)
    assert c["graph"]["total"] == pytest.approx(c["analytic_in_graph"], rel=1e-9)
    padded = c["runtime"]["total"] > c["graph"]["total"] * (1 + 1e-9)
    assert padded == bool(c["runtime_only"])
    assert all(f", {2 * cfg.channels}, " in s for s in c["runtime_only"])


def test_check_reports_a_config_that_does_not_match_the_graph(tiny_model_dir):
    cfg = ModelConfig.load(tiny_model_dir / "config.json")
    wrong = ModelConfig(**{**cfg.__dict__, "channels": 2 * cfg.channels})
    c = flops.check(tiny_model_dir / "model.onnx", wrong)
    assert not c["agree"] and c["worst_relative_difference"] > 0.03


def test_frontend_forms_are_separate_terms():
    cfg = ModelConfig()
    fft, dft = flops.audioembed_flops(cfg, 10.0, "fft"), flops.audioembed_flops(cfg, 10.0, "dft")
    assert fft["cnn"] == dft["cnn"]
    assert set(fft["frontend"]) == {"fft", "mel"} and set(dft["frontend"]) == {"stft", "mel"}
    # the DFT conv over the used bins costs far more than an FFT of every frame
    assert dft["frontend"]["stft"] > 50 * fft["frontend"]["fft"]
    with pytest.raises(ValueError, match="frontend form"):
        flops.frontend_flops(cfg, 10.0, "conv")


def test_target_direction():
    assert report.target("x", 1.6, 1.5, "", "").met == "yes"
    assert report.target("x", 1.4, 1.5, "", "").met == "NO"
    assert report.target("x", 200, 241, "", "", at_most=True).met == "yes"
    assert report.target("x", 0.1, 0.3, "", "", at_most=True, ok=False).met == "NO"


def test_stability_compares_spread_with_distance_to_target():
    def run(ratio, rss):
        return [report.Row("info", "a"), report.target("ratio", ratio, 1.5, "", ""),
                report.target("rss", rss, 240, "", "", at_most=True)]

    stab = {s["figure"]: s for s in report.stability([run(1.02, 200), run(2.58, 205), run(1.6, 201)])}
    assert set(stab) == {"TARGET ratio", "TARGET rss"}
    r = stab["TARGET ratio"]
    assert r["values"] == [1.02, 2.58, 1.6] and r["median"] == 1.6
    assert r["spread"] == pytest.approx(1.56) and r["distance"] == pytest.approx(0.1) and not r["stable"]
    s = stab["TARGET rss"]
    assert s["spread"] == 5 and s["distance"] == 39 and s["stable"]
    table = report.stability_table(report.stability([run(1.02, 200), run(2.58, 205)]))
    assert "| ratio " in table and "NO" in table and "yes" in table


def test_run_unsets_the_openblas_kernel_and_checks_the_flops(tiny_model_dir, tmp_path):
    """run.py with every measured section skipped: the environment report and the FLOP check still run."""
    import json
    import os
    import subprocess

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "OPENBLAS_CORETYPE": "Nehalem", "OPENBLAS_L2_SIZE": "512",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "run.py"), "--model", str(tiny_model_dir), "--threads", "1",
         "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "out"), "--skip", "throughput", "e2e", "memory", "startup"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unset in this process (OPENBLAS_CORETYPE=Nehalem, OPENBLAS_L2_SIZE=512)" in proc.stdout
    res = json.loads(next((tmp_path / "out").glob("bench-*.json")).read_text())
    assert res["blas"]["unset"] == {"OPENBLAS_CORETYPE": "Nehalem", "OPENBLAS_L2_SIZE": "512"}
    # numpy's OpenBLAS chose its own kernel, not the one the variable forced
    assert (res["blas"]["numpy"].get("architecture") or "").lower() != "nehalem"
    assert res["flop_check"]["graph"]["total"] == pytest.approx(res["flop_check"]["analytic_in_graph"], rel=1e-9)
    assert "TARGET FLOPs in model.onnx" in proc.stdout
