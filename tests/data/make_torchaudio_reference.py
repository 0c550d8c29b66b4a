"""Generate tests/data/torchaudio_melspec.npz: torchaudio's MelSpectrogram with BYOL-A's settings.

Run once in an environment that has torchaudio (it is not a dependency of audioembed):
    python tests/data/make_torchaudio_reference.py
The test compares audioembed's own log-mel frontend against the stored output.
"""

import numpy as np
import torch
import torchaudio

SR, N_FFT, WIN, HOP, N_MELS, F_MIN, F_MAX = 16000, 1024, 1024, 160, 64, 60.0, 7800.0

rng = np.random.default_rng(0)
t = np.arange(int(1.3 * SR)) / SR
wave = (
    0.3 * np.sin(2 * np.pi * 440 * t)
    + 0.2 * np.sin(2 * np.pi * 3000 * t * (1 + 0.2 * t))
    + 0.05 * rng.standard_normal(len(t))
).astype(np.float32)
mel = torchaudio.transforms.MelSpectrogram(
    sample_rate=SR, n_fft=N_FFT, win_length=WIN, hop_length=HOP, n_mels=N_MELS, f_min=F_MIN, f_max=F_MAX
)
logmel = (mel(torch.from_numpy(wave)) + torch.finfo(torch.float32).eps).log()
np.savez_compressed(
    "tests/data/torchaudio_melspec.npz",
    wave=wave,
    logmel=logmel.numpy().astype(np.float32),
    torchaudio_version=torchaudio.__version__,
)
print(logmel.shape, torchaudio.__version__)
