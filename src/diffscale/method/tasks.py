"""Training tasks: what one batch is and how its loss is reduced, for :func:`diffscale.method.loop.train_loop`.

* :class:`CropTask` trains every residual model (:mod:`diffscale.method.residual`):
  random crops of (raw condition, history days, residual target, mask) drawn from the
  region padded by the sampling halo (reflection), so the models learn what edge tiles
  look like at sampling time; the mask keeps the padding out of the loss. The target is
  fine minus the day's reference: the coarse field, or a frozen regressor's teacher-forced
  prediction (``reference``), computed once per day before training. The model gives
  per-pixel losses; :func:`masked_mean` reduces them, once, here.
* :class:`NextDayTask` pretrains the temporal U-Net whose encoder is transferred
  (:mod:`diffscale.method.networks.encoder`): ``history`` days -> the next day, L1.

A task plugs into the loop as ``batch(step, generator)``, ``loss(net, batch, generator)``
and ``validate(model)``; validation uses a fixed, seeded set of crops.

Shapes: raw (N, R, P, P); history (N, history, P, P); target, mask (N, 1, P, P).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from diffscale.core import steps
from diffscale.method import conditioning as cond_mod
from diffscale.method.conditioning import SeasonData
from diffscale.method.loop import validation_loss
from diffscale.method.residual import ResidualSpec
from diffscale.method.tiling import Tiling

log = logging.getLogger("diffscale.method.tasks")


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of per-pixel ``values`` (N, 1, P, P) over the real (mask = 1) pixels; all of them without a mask."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.expand_as(values).sum().clamp(min=1)


def residual_loss(net: nn.Module, batch: tuple[torch.Tensor, ...], generator: torch.Generator | None) -> torch.Tensor:
    """The residual model's own per-pixel loss on a (raw, history, target, mask) batch, reduced over real pixels.

    net may be the DistributedDataParallel wrapper: the forward pass goes through it.
    """
    raw, history, target, mask = batch
    model = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
    return masked_mean(model.pixel_loss(net, raw, history, target, generator), mask)


# (raw condition (R, H, W), history (history, H, W)) of a day -> the (H, W) field its residual is taken from.
Reference = Callable[[np.ndarray, np.ndarray], np.ndarray]


class CropTask:
    """Training batches of (raw condition, history, residual target, mask) crops of one season.

    reference: what the residual target is taken from, given the day's raw condition and
    true history; None: the coarse field (raw channel 0).
    """

    loss = staticmethod(residual_loss)

    def __init__(self, spec: ResidualSpec, data: SeasonData, batch_size: int, val_crops: int = 64, seed: int = 0,
                 reference: Reference | None = None):
        self.history, self.batch_size, self.patch = spec.history, batch_size, spec.patch
        self.reference = reference
        h, w = data.shape
        self.tiling = Tiling(h, w, spec.patch, spec.halo)
        self.static = cond_mod.static_channels(data.lat, data.lon, data.static)
        # The days the crops are drawn from, kept with the saved model (its training-day contract).
        self.days = {"train": cond_mod.training_days(data, "train", spec.history),
                     "val": cond_mod.training_days(data, "val", spec.history)}
        self.train = self._stack(data, self.days["train"])
        if self.train[0].shape[0] == 0:
            raise ValueError("no training day has a full history inside the fine record (check split.buffer_days and encoder.history)")
        self.val = self._stack(data, self.days["val"]) if len(self.days["val"]) else None
        g = torch.Generator().manual_seed(seed)
        self.val_batch = self._draw(self.val, val_crops, g) if self.val is not None else None

    def _stack(self, data: SeasonData, days: pd.DatetimeIndex) -> tuple[torch.Tensor, ...]:
        """(raw, history, target, mask) of ``days``, each (T, ., H + pads, W + pads)."""
        raws, hists, targets = [], [], []
        for day in days:
            coarse = data.coarse_on(day)
            raws.append(cond_mod.raw_condition(coarse, self.static, day))
            hists.append(cond_mod.true_history(data, day, self.history))
            base = coarse if self.reference is None else self.reference(raws[-1], hists[-1])
            targets.append((data.fine_on(day) - base)[None])
        h, w = data.shape
        if not raws:
            return (torch.empty(0, cond_mod.raw_channels(data.static), h, w), torch.empty(0, self.history, h, w),
                    torch.empty(0, 1, h, w), torch.empty(0, 1, h, w))
        pad = self.tiling.pad
        raw = pad(torch.from_numpy(np.stack(raws)))
        hist = pad(torch.from_numpy(np.stack(hists)))
        target = pad(torch.from_numpy(np.stack(targets)))
        left, _, top, _ = self.tiling.padding
        mask = torch.zeros(1, 1, *raw.shape[-2:])
        mask[..., top:top + h, left:left + w] = 1
        return raw, hist, target, mask.expand(len(days), 1, *mask.shape[-2:])

    def target_std(self) -> float:
        """The standard deviation of the residual targets on real pixels (the models' ``scale``)."""
        target, mask = self.train[2], self.train[3]
        return float(target[mask > 0].std())

    def _draw(self, arrays: tuple[torch.Tensor, ...], n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        ph, pw = arrays[0].shape[-2:]
        t = torch.randint(arrays[0].shape[0], (n,), generator=gen)
        y = torch.randint(ph - self.patch + 1, (n,), generator=gen)
        x = torch.randint(pw - self.patch + 1, (n,), generator=gen)
        p = torch.arange(self.patch)
        iy, ix = (y[:, None] + p)[:, None, :, None], (x[:, None] + p)[:, None, None, :]
        return tuple(a[t[:, None, None, None], torch.arange(a.shape[1])[None, :, None, None], iy, ix] for a in arrays)

    def batch(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        return self._draw(self.train, self.batch_size, gen)

    def validate(self, model: nn.Module) -> float:
        return validation_loss(self.loss, model, self.val_batch)


class NextDayTask:
    """Pretraining of the temporal U-Net: ``history`` days -> the next day, on random patches.

    fields (T, H, W) float32: the scaled coarse-on-fine record (the grid, patch size and
    scaling the encoder meets again at transfer); train_index / val_index: positions t
    of target days whose ``history`` previous days are all in ``fields``.

    The validation patches are drawn once (seeded); :meth:`references` scores two
    forecasts that need no training on exactly those patches, in the loss's units, so the
    validation loss reads against them: persistence (the last history day) and
    climatology (the mean field of the training days).
    """

    def __init__(self, fields: np.ndarray, train_index: np.ndarray, val_index: np.ndarray, history: int, patch: int,
                 batch_size: int, val_patches: int = 256, seed: int = 0):
        if len(train_index) == 0:
            raise ValueError("no training days for the encoder (check the coarse period and the season's months)")
        self.fields = torch.from_numpy(np.ascontiguousarray(fields, dtype=np.float32))
        ny, nx = fields.shape[-2:]
        if ny < patch or nx < patch:
            # A region smaller than a patch: pad it the way sampling tiles are padded (reflection).
            self.fields = Tiling(ny, nx, patch, 0).pad(self.fields)[..., :max(ny, patch), :max(nx, patch)]
        self.train_index, self.val_index = np.asarray(train_index), np.asarray(val_index)
        self.history, self.patch, self.batch_size = history, patch, batch_size
        self.climatology = self.fields[torch.from_numpy(self.train_index)].mean(dim=0)
        g = torch.Generator().manual_seed(seed)
        self.val_batch, self.val_climatology = None, None
        if len(self.val_index):
            t, y, x = self._where(self.val_index, min(val_patches, 8 * len(self.val_index)), g)
            self.val_batch = self._crops(t, y, x)
            self.val_climatology = self._crop(self.climatology[None, None], y, x)

    def normalisation(self) -> tuple[float, float]:
        """Mean and standard deviation of every day the training patches are cut from (target and history days)."""
        days = np.unique((self.train_index[:, None] + np.arange(-self.history, 1)).ravel())
        values = self.fields.numpy()[days].astype(np.float64)
        return float(values.mean()), float(values.std())

    def _where(self, index: np.ndarray, n: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        ny, nx = self.fields.shape[-2:]
        t = torch.from_numpy(index)[torch.randint(len(index), (n,), generator=gen)]
        y = torch.randint(ny - self.patch + 1, (n,), generator=gen)
        x = torch.randint(nx - self.patch + 1, (n,), generator=gen)
        return t, y, x

    def _crop(self, fields: torch.Tensor, y: torch.Tensor, x: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        """(n, D, patch, patch) crops of (T, H, W) ``fields`` at days ``t`` (n, D), or of (1, D, H, W) without."""
        p = torch.arange(self.patch)
        iy, ix = (y[:, None] + p)[:, None, :, None], (x[:, None] + p)[:, None, None, :]
        if t is None:
            return fields[0][torch.arange(fields.shape[1])[None, :, None, None], iy, ix]
        return fields[t[:, :, None, None], iy, ix]

    def _crops(self, t: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (n, history + 1, patch, patch) gathered in one indexing operation
        crops = self._crop(self.fields, y, x, t[:, None] + torch.arange(-self.history, 1))
        return crops[:, :-1], crops[:, -1:]

    def batch(self, step: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self._crops(*self._where(self.train_index, self.batch_size, gen))

    @staticmethod
    def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], gen: torch.Generator | None = None) -> torch.Tensor:
        history, target = batch
        return masked_mean((model(history) - target).abs())  # L1, as in the paper

    def validate(self, model: nn.Module) -> float:
        return validation_loss(self.loss, model, self.val_batch)

    def references(self) -> dict[str, float]:
        """L1 of persistence and climatology on the validation patches; empty without validation days."""
        if self.val_batch is None:
            return {}
        history, target = self.val_batch
        return {"persistence": float(masked_mean((history[:, -1:] - target).abs())),
                "climatology": float(masked_mean((self.val_climatology - target).abs()))}


def pretraining_days(times: pd.DatetimeIndex, months: list[int], history: int, val_years: int,
                     held_out: pd.DatetimeIndex | None = None, step: str = "day") -> tuple[np.ndarray, np.ndarray]:
    """Positions of the season's days with a full history in ``times``; the last ``val_years`` years validate.

    held_out: days (the fine record's validation and test days) that neither a target
    nor its ``history`` input days may be, so in-record scores never meet a day the
    encoder was fitted on.
    """
    t = np.arange(len(times))
    ok = np.isin(times.month, months) & (t >= history)
    if history:
        # times may hold the season's stretches of the record alone (load_season with days): a
        # target's history must be the ``history`` steps just before it, not the end of the last stretch
        ok &= np.asarray(times[np.maximum(t - history, 0)] == pd.DatetimeIndex(steps.shift(times, -history, step)))
    if held_out is not None and len(held_out):
        touched = times.isin(held_out)
        # a target is out when any day of [t - history, t] is held out
        window = np.convolve(touched.astype(int), np.ones(history + 1, dtype=int))[:len(times)]
        ok &= window == 0
    years = sorted(set(times.year[ok]))
    if val_years >= len(years):
        log.warning("encoder.val_years = %d leaves no training year in a record of %d (%s): pretraining without "
                    "validation or early stopping", val_years, len(years), years)
        val_years = 0
    val_set = set(years[len(years) - val_years:]) if val_years else set()
    is_val = np.isin(times.year, list(val_set))
    return t[ok & ~is_val], t[ok & is_val]
