"""BYOL-A's views: log-mixup-exp with a memory bank, random resize crop, random linear fader,
post-normalisation. Batched, and every random draw comes from one torch.Generator (resumable)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .transfer import to_device


class MixupBank:
    """Mixes each clip with a past clip in linear amplitude: log((1-r)·e^x + r·e^z), r ~ U(0, ratio)."""

    def __init__(self, size: int, ratio: float):
        self.size, self.ratio = size, ratio
        self.bank: torch.Tensor | None = None
        self.count = 0  # filled slots
        self.pos = 0  # next slot to overwrite

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        if self.count == 0:
            return x
        pick = torch.randint(self.count, (b,), generator=gen)
        r = self.ratio * torch.rand(b, 1, 1, generator=gen)
        z = to_device(self.bank[pick], x.device)
        r = to_device(r, x.device)
        return torch.log((1 - r) * x.exp() + r * z.exp() + torch.finfo(x.dtype).eps)

    def push(self, x: torch.Tensor) -> None:
        x = x.detach().cpu()
        if self.bank is None:
            self.bank = torch.zeros((self.size, *x.shape[1:]), dtype=x.dtype)
        for item in x[-self.size :]:
            self.bank[self.pos] = item
            self.pos = (self.pos + 1) % self.size
            self.count = min(self.count + 1, self.size)

    def state_dict(self) -> dict:
        return {"bank": self.bank, "count": self.count, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.bank, self.count, self.pos = state["bank"], int(state["count"]), int(state["pos"])


def random_resize_crop(x: torch.Tensor, gen: torch.Generator, virtual=(1.0, 1.5), freq=(0.6, 1.5), time=(0.6, 1.5)) -> torch.Tensor:
    """Crop a random area of a zero canvas (virtual × the input, input centred) and resize back.

    One bicubic `grid_sample` for the whole batch: each item's sampling grid maps the output
    onto its own crop of the canvas (align_corners, as the per-item resize it replaces).
    """
    b, f, t = x.shape
    cf, ct = int(f * virtual[0]), int(t * virtual[1])
    canvas = x.new_zeros(b, 1, cf, ct)
    i0, j0 = (cf - f) // 2, (ct - t) // 2
    canvas[:, 0, i0 : i0 + f, j0 : j0 + t] = x
    u = torch.rand(b, 4, generator=gen, dtype=torch.float64)
    h = (f * (freq[0] + (freq[1] - freq[0]) * u[:, 0])).long().clamp(1, cf)
    w = (t * (time[0] + (time[1] - time[0]) * u[:, 1])).long().clamp(1, ct)
    i = (u[:, 2] * (cf - h + 1)).long()
    j = (u[:, 3] * (ct - w + 1)).long()
    # canvas row of output row r: i + r·(h-1)/(f-1); grid_sample wants it in [-1, 1] over the canvas.
    rows = i[:, None] + torch.linspace(0, 1, f, dtype=torch.float64)[None, :] * (h - 1)[:, None]
    cols = j[:, None] + torch.linspace(0, 1, t, dtype=torch.float64)[None, :] * (w - 1)[:, None]
    gy = (2 * rows / max(cf - 1, 1) - 1)[:, :, None].expand(b, f, t)
    gx = (2 * cols / max(ct - 1, 1) - 1)[:, None, :].expand(b, f, t)
    grid = to_device(torch.stack([gx, gy], dim=-1).to(x.dtype), x.device)
    out = F.grid_sample(canvas, grid, mode="bicubic", padding_mode="border", align_corners=True)
    return out[:, 0]


def random_linear_fader(x: torch.Tensor, gen: torch.Generator, gain: float = 1.0) -> torch.Tensor:
    """Add a linear ramp over time in the log domain: a fade in or out of up to ±gain."""
    b, _, t = x.shape
    ends = gain * (2 * torch.rand(b, 2, generator=gen) - 1)
    ramp = ends[:, :1] + (ends[:, 1:] - ends[:, :1]) * torch.linspace(0, 1, t)[None, :]
    return x + to_device(ramp[:, None, :], x.device)


def post_norm(x: torch.Tensor) -> torch.Tensor:
    """Standardise a batch of views by its own statistics (BYOL-A's post-normalisation)."""
    return (x - x.mean()) / (x.std() + 1e-8)


def crop_fade_norm(x: torch.Tensor, gen: torch.Generator, s) -> torch.Tensor:
    """A view's steps after mixup: random resize crop, linear fader, post-normalisation."""
    x = random_resize_crop(x, gen, s.rrc_virtual_scale, s.rrc_freq_scale, s.rrc_time_scale)
    return post_norm(random_linear_fader(x, gen, s.fader_gain))


class ViewMaker:
    """Two BYOL-A views of each crop; the crops then join the mixup bank."""

    def __init__(self, settings):
        self.s = settings
        self.bank = MixupBank(settings.mixup_bank, settings.mixup_ratio)

    def view(self, x: torch.Tensor, gen: torch.Generator, s=None) -> torch.Tensor:
        return crop_fade_norm(self.bank(x, gen), gen, self.s if s is None else s)

    def __call__(self, x: torch.Tensor, gen: torch.Generator, s=None) -> tuple[torch.Tensor, torch.Tensor]:
        """s: the settings for these views (default: the maker's), e.g. with the frequency crop stopped."""
        v1, v2 = self.view(x, gen, s), self.view(x, gen, s)
        self.bank.push(x)
        return v1, v2
