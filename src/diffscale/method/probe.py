"""A linear probe of the transfer encoder's features: what pretraining adds over the untrained network.

For every fine training day t whose previous ``history`` days are in the fine record, the
frozen encoder's features of days t-H .. t-1 (the channels the denoiser receives,
:class:`diffscale.method.networks.encoder.TransferEncoder`) are the predictors, pixel by
pixel, of the fine field of day t. A ridge regression (standardised predictors, a fixed
small penalty, nothing tuned) is fitted on the training days and scored on the validation
days, in the split's scaled units. The predictor sets compared:

* ``pretrained``: the encoder after pretraining;
* ``random``: the control, the same network with the initial weights pretraining starts
  from and the same input standardisation (:func:`diffscale.method.fit.untrained_encoder`);
* ``history``: the history days themselves, a linear autoregression at each pixel;
* ``history + pretrained``, ``history + random``: the days and the features, as the
  denoiser receives them: what the features add to the days.

The probe measures what the features carry linearly, cheaply; the diffusion model without
transfer features (``diffusion_no_transfer``) is the end-to-end ablation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F

from diffscale.method.conditioning import SeasonData, training_days, true_history
from diffscale.method.networks.encoder import TemporalUNet, TransferEncoder

log = logging.getLogger("diffscale.method.probe")

PENALTY = 1e-3  # ridge penalty on standardised predictors, per training pixel; fixed, not selected
# Pixel-days per subset (train, val) the ridge fits read at most: the demo's are all of
# theirs (~1e5); a paper region's are sampled.
MAX_ROWS = 500_000
MAX_SIDE = 64
COLUMNS = ["predictors", "features", "train_days", "val_days", "val_rmse", "val_r2"]


@torch.no_grad()
def pixel_predictors(encoder: TemporalUNet | None, history: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
    """(D, history, H, W) days -> (D * H * W, F): the encoder's features at each pixel, or the days themselves;
    with ``pixels`` (flat indices), (D * len(pixels), F) at those pixels of each day."""
    x = torch.from_numpy(np.ascontiguousarray(history, dtype=np.float32))
    if encoder is not None:
        h, w = x.shape[-2:]
        # The U-Net's levels need sides divisible by its factor: reflect-pad, then cut the features back.
        pad_h, pad_w = -h % encoder.factor, -w % encoder.factor
        x = TransferEncoder(encoder)(F.pad(x, (0, pad_w, 0, pad_h), mode="reflect"))[..., :h, :w]
    x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])  # (D, H * W, F)
    if pixels is not None:
        x = x[:, torch.from_numpy(pixels)]
    return x.reshape(-1, x.shape[-1]).numpy().astype(np.float64)


def ridge_scores(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 penalty: float = PENALTY) -> tuple[float, float]:
    """(RMSE, R2) on the validation rows of a ridge fit on the training rows (R2 against the validation mean)."""
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0  # a constant feature gets a zero coefficient, not a division by zero
    a, b = (x_train - mean) / std, (x_val - mean) / std
    y_mean = y_train.mean()
    coef = np.linalg.solve(a.T @ a / len(a) + penalty * np.eye(a.shape[1]), a.T @ (y_train - y_mean) / len(a))
    err = b @ coef + y_mean - y_val
    rmse = float(np.sqrt(np.mean(err ** 2)))
    return rmse, float(1.0 - np.sum(err ** 2) / np.sum((y_val - y_val.mean()) ** 2))


def probe(data: SeasonData, encoders: Mapping[str, TemporalUNet], history: int) -> pd.DataFrame:
    """Ridge scores on the validation days: the history days, then each encoder's features alone and beside the days.

    Rows are named ``history``, ``<name>`` and ``history + <name>`` (the denoiser gets both).
    """
    days = {subset: training_days(data, subset, history) for subset in ("train", "val")}
    if len(days["train"]) == 0:
        raise ValueError("no training day has a full history inside the fine record: nothing to fit the probe on")
    if len(days["val"]) == 0:
        log.warning("probe: no validation day with a full history in the fine record; scores are NaN")
    sets: dict[str, dict[str, np.ndarray]] = {"history": {}, **{k: {} for name in encoders
                                                               for k in (name, f"history + {name}")}}
    target = {}
    rng = np.random.default_rng(0)
    # The encoder's attention over a whole paper region (433 x 358) would take ~100 GB: the
    # probe reads a centred window of at most MAX_SIDE pixels a side (the demo's region whole).
    (h, w), window = data.shape, tuple(slice(max(0, (n - MAX_SIDE) // 2), max(0, (n - MAX_SIDE) // 2) + MAX_SIDE)
                                       for n in data.shape)
    h, w = min(h, MAX_SIDE), min(w, MAX_SIDE)
    for s, ds in days.items():
        if not len(ds):
            continue
        # A paper region's pixel-days (~1e8) would not fit in memory as predictors: past
        # MAX_ROWS, every day gives the same seeded sample of pixels, a few days at a time.
        per_day = min(h * w, max(1, MAX_ROWS // len(ds)))
        pixels = None if per_day == h * w else np.sort(rng.choice(h * w, per_day, replace=False))
        batch = len(ds) if pixels is None else 8
        parts: dict[str, list[np.ndarray]] = {k: [] for k in sets}
        targets = []
        for start in range(0, len(ds), batch):
            chunk = ds[start:start + batch]
            hist = np.stack([true_history(data, d, history)[:, window[0], window[1]] for d in chunk])  # (D, history, H, W)
            fine = np.stack([data.fine_on(d)[window] for d in chunk]).reshape(len(chunk), h * w)
            targets.append((fine if pixels is None else fine[:, pixels]).astype(np.float64).ravel())
            x = {"history": pixel_predictors(None, hist, pixels)}
            for name, encoder in encoders.items():
                x[name] = pixel_predictors(encoder, hist, pixels)
                x[f"history + {name}"] = np.concatenate([x["history"], x[name]], axis=1)
            for k, v in x.items():
                parts[k].append(v)
        target[s] = np.concatenate(targets)
        for k in sets:
            sets[k][s] = np.concatenate(parts[k])
    rows = []
    for name, x in sets.items():
        rmse, r2 = (ridge_scores(x["train"], target["train"], x["val"], target["val"]) if "val" in x
                    else (float("nan"), float("nan")))
        rows.append([name, x["train"].shape[1], len(days["train"]), len(days["val"]), rmse, r2])
        log.info("probe %s: %d features, validation RMSE %.5g, R2 %.4f", name, x["train"].shape[1], rmse, r2)
    return pd.DataFrame(rows, columns=COLUMNS)
