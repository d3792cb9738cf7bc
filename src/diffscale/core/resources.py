"""Memory and run time of each rule's job, from the config's sizes and the job's input.

A job needs a fixed part (the interpreter, numpy/xarray or torch, a model) and a part
that grows with what it holds or works through. Each rule has a :class:`Footprint`:

    mem_mb  = SAFETY x (base_mb + mb_per_mb x held_mb)        x (1 + RETRY_GROWTH x (attempt - 1))
    runtime = SAFETY x (base_s  + s_per_unit x work) / 60     x (1 + RETRY_GROWTH x (attempt - 1))

``held_mb`` is the float32 size of the largest record the job holds, computed from the
config (grid pixels, days, members), or the job's largest input file where that is larger
(inputs are zlib-compressed, so they are usually smaller; a larger one means data the
config does not describe, such as float64 files). ``work`` is in the rule's own unit
(:meth:`Sizes.estimate`): MB held for the data and evaluation rules, epochs x MB for
pretrain_encoder, samples seen (steps x batch_size) for training, megapixel denoiser
evaluations for sampling. Without input files (a dry run) the
config's estimate alone is used, so ``snakemake -n`` prints real numbers.

The coefficients come from the workflow's own ``benchmark:`` files (max_rss, s) of runs on
a 2-core CPU machine; README.md, "Resources", lists them and the commands. The rates of
the GPU rules are CPU rates of the demo's small networks (no GPU run has been measured);
run time is capped at :data:`MAX_RUNTIME_MIN`, and training resumes from its checkpoint
when a job that hit the cap is retried (``--retries``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from diffscale.core import steps as timesteps
from diffscale.core.grids import Box, g5nr_grid

MB = 2**20
FLOAT32 = 4
# Headroom over the measured figures: Snakemake's benchmark files sample a job every 0.5 s
# for its first 15 s and then every 30 s (snakemake.benchmark), so a brief peak of a long job
# can fall between samples; and real data compress and spread differently from the twin's.
SAFETY = 1.5
# Each retry (snakemake --retries N) asks this much more of the first attempt's request:
# attempt 2 asks 1.5x, attempt 3 2x, so a job killed for memory or time gets room.
RETRY_GROWTH = 0.5
MIN_MEM_MB = 1000
MIN_RUNTIME_MIN = 10
# The longest job asked for (3 days); longer training jobs resume from their checkpoint on retry.
MAX_RUNTIME_MIN = 3 * 24 * 60


@dataclass(frozen=True)
class Footprint:
    """What one job of a rule costs: fixed parts and the growth per MB held / unit of work."""

    base_mb: float
    mb_per_mb: float
    base_s: float
    s_per_unit: float


# Fitted to the workflow's own benchmark files on a shared 2-core machine (README.md,
# "Resources" and "Paper-size data", give the figures and commands): the demo
# (config/config.yaml, region west), the demo's config over 4 x 5 and 8 x 10 degree regions
# (the data rules), and the paper-size twin (config/paper_twin.yaml: area1's grid, 25
# years; and the same over 5 years). The base is the demo's max_rss; the growth per MB held
# (what Sizes.estimate says the job holds: a month, the fine record, a season's stretches)
# goes through the paper-size figures. Times take the slowest point (the machine's load
# made them vary 2-3x); the rates of the GPU rules are CPU rates. Rules without a
# paper-size figure keep a growth of 2 per MB held (the data once plus a working copy), an
# assumption.
FOOTPRINTS: dict[str, Footprint] = {
    "make_synthetic": Footprint(base_mb=150, mb_per_mb=4.6, base_s=10, s_per_unit=1.6),
    "regrid": Footprint(base_mb=145, mb_per_mb=0.1, base_s=10, s_per_unit=1.05),
    "regrid_fine_to_coarse": Footprint(base_mb=147, mb_per_mb=0.16, base_s=7, s_per_unit=0.95),
    "split_region": Footprint(base_mb=150, mb_per_mb=0.5, base_s=13, s_per_unit=2.4),
    "split": Footprint(base_mb=150, mb_per_mb=3.0, base_s=4, s_per_unit=0.3),
    "domain": Footprint(base_mb=490, mb_per_mb=8.0, base_s=7, s_per_unit=2.6),
    "pretrain_encoder": Footprint(base_mb=590, mb_per_mb=7.5, base_s=10, s_per_unit=0.4),
    "train_diffusion": Footprint(base_mb=490, mb_per_mb=1.95, base_s=10, s_per_unit=0.14),
    "train_baseline": Footprint(base_mb=506, mb_per_mb=1.8, base_s=10, s_per_unit=0.16),
    "sample": Footprint(base_mb=645, mb_per_mb=2.6, base_s=5, s_per_unit=19.0),
    "sample_beyond": Footprint(base_mb=415, mb_per_mb=3.6, base_s=10, s_per_unit=24.0),
    # curve_members members on the validation days: sample's footprint (an assumption: not fitted yet)
    "members_curve": Footprint(base_mb=645, mb_per_mb=2.6, base_s=5, s_per_unit=19.0),
    "sampler_benchmark": Footprint(base_mb=430, mb_per_mb=2.3, base_s=10, s_per_unit=9.0),
    # every training run of the tuning grid: train_diffusion's rate per sample seen, plus the
    # validation ensembles (an assumption until its benchmark file is fitted)
    "tune": Footprint(base_mb=475, mb_per_mb=2.0, base_s=30, s_per_unit=0.02),
    "gather_beyond": Footprint(base_mb=420, mb_per_mb=4.2, base_s=5, s_per_unit=0.6),
    "sample_bicubic": Footprint(base_mb=154, mb_per_mb=6.0, base_s=3, s_per_unit=0.1),
    # the paper-size twin's DJF (3.1 GB held: truth and four models' members over 23 years) peaked
    # at 15.6 GB once its scores read slabs of days (it was killed at 22 GB before), in 21.5 min
    "evaluate": Footprint(base_mb=380, mb_per_mb=5.0, base_s=20, s_per_unit=0.42),
    "plot_evaluation": Footprint(base_mb=240, mb_per_mb=2.0, base_s=27, s_per_unit=0.1),
    "assemble": Footprint(base_mb=240, mb_per_mb=2.0, base_s=5, s_per_unit=0.1),
    "aggregate": Footprint(base_mb=200, mb_per_mb=4.1, base_s=10, s_per_unit=2.1),
    # regenerates the twin like make_synthetic, plus the ceiling's fitting year: its
    # footprint, with twice the time (an assumption until its benchmark file is fitted)
    "sample_references": Footprint(base_mb=150, mb_per_mb=4.5, base_s=20, s_per_unit=3.2),
    # New coarse data (config apply): the footprints of the steps they repeat (assumptions, not fitted)
    "apply_coarse": Footprint(base_mb=150, mb_per_mb=2.0, base_s=10, s_per_unit=1.6),
    "apply_regrid": Footprint(base_mb=145, mb_per_mb=0.1, base_s=10, s_per_unit=1.05),
    "apply_sample": Footprint(base_mb=415, mb_per_mb=2.0, base_s=10, s_per_unit=24.0),
    "apply_assemble": Footprint(base_mb=240, mb_per_mb=2.0, base_s=5, s_per_unit=0.1),
}

def mem_mb(rule: str, held_mb: float, attempt: int = 1) -> int:
    """Memory to ask for one job of ``rule`` holding ``held_mb`` MB of data, in MB."""
    f = _footprint(rule)
    need = SAFETY * (f.base_mb + f.mb_per_mb * held_mb) * _retry(attempt)
    return max(MIN_MEM_MB, int(math.ceil(need / 100.0)) * 100)


def runtime(rule: str, work: float, attempt: int = 1) -> int:
    """Wall time to ask for one job of ``rule`` doing ``work`` units (see :meth:`Sizes.estimate`), in minutes."""
    f = _footprint(rule)
    minutes = SAFETY * (f.base_s + f.s_per_unit * work) / 60.0 * _retry(attempt)
    return int(min(MAX_RUNTIME_MIN, max(MIN_RUNTIME_MIN, math.ceil(minutes))))


def _footprint(rule: str) -> Footprint:
    try:
        return FOOTPRINTS[rule]
    except KeyError:
        raise KeyError(f"no resource footprint for rule {rule!r}; known: {sorted(FOOTPRINTS)}") from None


def _retry(attempt: int) -> float:
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return 1.0 + RETRY_GROWTH * (attempt - 1)


# The rules that read their large inputs in slabs or windows (a month of days, a block's
# years, the season's stretches): the size of those files says nothing of what they hold.
STREAMING = frozenset({"domain", "pretrain_encoder", "train_diffusion", "train_baseline", "tune", "sample",
                       "members_curve", "sample_beyond", "sampler_benchmark", "gather_beyond", "sample_bicubic",
                       "evaluate", "plot_evaluation", "sample_references"})


def held(estimate_mb: float, input_mb: float | None, rule: str | None = None) -> float:
    """The larger of the config's estimate and the largest input on disk (None: not there yet);
    the estimate alone for the rules in :data:`STREAMING`."""
    if rule in STREAMING:
        return estimate_mb
    return max(estimate_mb, input_mb or 0.0)


def largest_input_mb(paths: Iterable[str | os.PathLike]) -> float | None:
    """The largest of a job's input files in MB; None while any of them does not exist yet
    (a dry run, or a job whose inputs are still to be made).

    Not the total (Snakemake's ``input.size_mb``): the evaluation rules read many models'
    files one after another, and a job holds at least one whole input, not all of them.
    """
    largest = 0
    for path in paths:
        try:
            largest = max(largest, os.path.getsize(path))
        except FileNotFoundError:
            return None
    return largest / MB


class Sizes:
    """The sizes the config implies: pixels, days, members; everything in MB of float32."""

    def __init__(self, config: Mapping) -> None:
        self.config = config
        data = config["data"]
        self.step = data.get("step", "day")
        # "days" are the records' steps (months or years for such data)
        self.coarse_days = _days(data["coarse_period"], self.step)
        self.fine_days = _days(data["fine_period"], self.step)
        self._boxes = {name: Box.from_config(b) for name, b in config["regions"].items()}

    def pixels(self, region: str) -> int:
        ny, nx = g5nr_grid(self._boxes[region]).shape
        return ny * nx

    def record_mb(self, region: str) -> float:
        """The region's coarse record on its fine grid (the largest array of its data rules)."""
        return self.pixels(region) * self.coarse_days * FLOAT32 / MB

    def raw_mb(self) -> float:
        """The twin's fine record over every region (with the margin) and the coarse period."""
        margin = self.config["data"]["margin_deg"]
        box = Box.union([b.padded(margin) for b in self._boxes.values()])
        ny, nx = g5nr_grid(box).shape
        return ny * nx * self.coarse_days * FLOAT32 / MB

    def season_fraction(self, season: str) -> float:
        return len(self.config["seasons"][season]) / 12.0

    def fine_mb(self, region: str) -> float:
        """The region's fine record (data.fine_period): what the training and sampling jobs hold whole."""
        return self.pixels(region) * self.fine_days * FLOAT32 / MB

    def stretch_fraction(self, season: str, history: int, spinup_days: int = 0) -> float:
        """The share of the coarse record a job over the season's days reads: each season's
        stretch with its history window (and spin-up) before it (load_season with days)."""
        per_year = {"day": 365.25, "month": 12.0, "year": 1.0}[self.step]
        return min(1.0, self.season_fraction(season) + (history + 1) / per_year + spinup_days / 365.25)

    def training_stack_mb(self, region: str, season: str | None) -> float:
        """What a training job stacks: each of the season's fine days with its raw condition,
        its ``history`` days and its target (CropTask), as many as the fine record holds."""
        season = season or next(iter(self.config["seasons"]))
        # history, ~6 raw channels, target and mask, and 10 more for what a job holds besides its
        # stack (the season's coarse fields, the model): the twin's training jobs took 4.3 GB
        # with 8 history days and 7.7 GB with 40, not 5 times as much (tests/test_resources.py;
        # both before diffscale.core.allocator, whose kept memory the footprints' rates cover)
        channels = self.config["encoder"]["history"] + 18
        return self.fine_mb(region) * self.season_fraction(season) * channels

    def month_mb(self, region: str) -> float:
        """One month of the region's record: what the rules that stream by month hold of it."""
        per_month = {"day": 31, "month": 1, "year": 1}[self.step]
        return self.pixels(region) * min(self.coarse_days, per_month) * FLOAT32 / MB

    def samples_mb(self, region: str, season: str) -> float:
        """One model's saved members over the season's days of the coarse record."""
        return self.config["sampling"]["members_saved"] * self.record_mb(region) * self.season_fraction(season)

    def block_days(self, season: str) -> float:
        """Steps of one beyond block (sampling.block: 'year' or a number of steps) in the season."""
        block = self.config["sampling"]["block"]
        span = {"day": 365.25, "month": 12.0, "year": 1.0}[self.step] if block == "year" else float(block)
        return min(self.coarse_days, span) * self.season_fraction(season)

    def denoiser_mpix(self, region: str, days: float, members: int, steps: int) -> float:
        """Megapixel denoiser evaluations: every pixel of every member, day and solver step, as
        often as the tiles overlap (sampling.overlap 0.75: a stride of a quarter tile, 16 times)."""
        coverage = 1.0 / (1.0 - self.config["sampling"]["overlap"]) ** 2
        return self.pixels(region) * days * members * steps * coverage / 1e6

    def estimate(self, rule: str, region: str | None = None, season: str | None = None,
                 train: Mapping | None = None, days: int | None = None) -> tuple[float, float]:
        """(held MB, work units) of one job of ``rule`` from the config alone.

        Work is MB held for the data and evaluation rules, epochs x MB of record for
        pretrain_encoder, samples seen (steps x batch_size) for training, and megapixel
        denoiser evaluations (:meth:`denoiser_mpix`) for sampling.
        ``train``: the training settings (steps, batch_size) of train_baseline; train_diffusion
        takes the diffusion section's. ``days``: the days of an apply entry's new coarse data
        (default: as many as data.coarse_period).
        """
        s = self.config["sampling"]
        if rule in ("make_synthetic", "sample_references"):  # a month at a time, after the ceiling's fitting year
            return self.raw_mb() * min(1.0, 365.0 / self.coarse_days), self.raw_mb()
        if rule.startswith("apply_"):
            return self._apply_estimate(rule, region, season, self.coarse_days if days is None else days)
        if region is None:
            raise ValueError(f"rule {rule!r} is sized per region: give region")
        record, fine = self.record_mb(region), self.fine_mb(region)
        history = self.config["encoder"]["history"]
        if rule in ("regrid", "regrid_fine_to_coarse", "split_region"):
            return record, record
        if rule == "split":  # the fine record; the scaler is fitted on its training days
            return fine, record
        if rule == "domain":  # the fine record and its days' coarse fields; the coarse record in slabs, twice
            return fine, record
        if rule == "pretrain_encoder":  # the season's stretches of the coarse record
            return record * self.stretch_fraction(season or next(iter(self.config["seasons"])), history), \
                self.config["encoder"]["epochs"] * record
        if rule == "tune":  # one run of max(steps) per (batch_size, lr); the config's values are candidates too
            t, d = self.config["tuning"], self.config["diffusion"]
            batches = set(t["batch_size"]) | {d["batch_size"]}
            rates = set(t["lr"]) | {d["lr"]}
            return self.training_stack_mb(region, season), float(max(set(t["steps"]) | {d["steps"]}) * sum(batches)
                                                                  * len(rates))
        if rule in ("train_diffusion", "train_baseline"):  # each training day's channels: its history days too
            settings = train if train is not None else self.config["diffusion"]
            return self.training_stack_mb(region, season), float(settings["steps"] * settings["batch_size"])
        if rule == "aggregate":  # the product's members a calendar year at a time, and the monthly aggregates
            per_year = {"day": 365.25, "month": 12.0, "year": 1.0}[self.step]
            members = s["members_saved"]
            year = record * min(1.0, per_year / self.coarse_days)
            # per month: each member's mean and days above each threshold, their ensemble mean, and the
            # three quantiles of diffscale.method.aggregates.QUANTILES
            fields = (members + 1) * (1 + len(self.config["product"]["thresholds"])) + 3
            return year * members + record * min(1.0, 12.0 / per_year) * fields, members * record
        if rule == "assemble":  # a calendar year of the product at a time (mean, spread, saved members; a
            # season's members in float64), and the fine record
            per_year = {"day": 365.25, "month": 12.0, "year": 1.0}[self.step]
            year = record * min(1.0, per_year / self.coarse_days)
            mb = fine + year * (2 + s["members_saved"] + 2 * s["beyond_members"])
            return mb, record + max(self.samples_mb(region, name) for name in self.config["seasons"])
        if season is None:
            raise ValueError(f"rule {rule!r} is sized per region and season: give season")
        if rule == "sample_bicubic":  # a month of days at a time
            return self.month_mb(region), record * self.season_fraction(season)
        if rule == "sample":
            days = self.fine_days * self.season_fraction(season) * self.config["split"]["test_fraction"]
            mb = self.pixels(region) * days * s["members"] * FLOAT32 / MB
            return 2 * fine + mb, self.denoiser_mpix(region, days, s["members"], s["steps"])
        if rule == "members_curve":  # as many validation days as test days
            days = self.fine_days * self.season_fraction(season) * self.config["split"]["test_fraction"]
            mb = self.pixels(region) * days * s["curve_members"] * FLOAT32 / MB
            return 2 * fine + mb, self.denoiser_mpix(region, days, s["curve_members"], s["steps"])
        if rule == "sample_beyond":  # the fine record, the block's stretch of the coarse one, its samples
            days = self.block_days(season)
            span = days / self.season_fraction(season) * self.stretch_fraction(season, history, s["spinup_days"])
            mb = self.pixels(region) * (days * s["beyond_members"] + span) * FLOAT32 / MB
            return fine + mb, self.denoiser_mpix(region, days, s["beyond_members"], s["steps"])
        if rule == "sampler_benchmark":
            return 2 * fine, self.denoiser_mpix(region, s["benchmark_days"], s["benchmark_members"],
                                                s["steps"] + s["ddpm_steps"])
        if rule == "gather_beyond":  # a block at a time: the fine record, a block's members, truth and coarse
            block = self.pixels(region) * self.block_days(season) * (s["beyond_members"] + 2) * FLOAT32 / MB
            work = self.samples_mb(region, season) + 2 * record * self.stretch_fraction(season, 0)
            return fine + block, fine + work
        if rule in ("evaluate", "plot_evaluation"):  # one model's members at a time, the season's truth
            mb = self.samples_mb(region, season) + record * self.season_fraction(season)
            return fine + mb, fine + mb
        raise KeyError(f"no size estimate for rule {rule!r}; known: {sorted(FOOTPRINTS)}")

    def _apply_estimate(self, rule: str, region: str | None, season: str | None, days: int) -> tuple[float, float]:
        """(held MB, work) of the apply rules: the new days' record instead of the coarse period's."""
        raw = self.raw_mb() * days / self.coarse_days  # an upper bound: the twin's fine grid, not the coarse one
        if rule == "apply_coarse":
            return raw, raw
        if region is None:
            raise ValueError(f"rule {rule!r} is sized per region: give region")
        record = self.pixels(region) * days * FLOAT32 / MB
        if rule == "apply_regrid":
            return record, record
        members = self.config["sampling"]["beyond_members"]
        if rule == "apply_assemble":
            mb = record + self.config["sampling"]["members_saved"] * record
            return mb, mb
        if season is None:
            raise ValueError(f"rule {rule!r} is sized per region and season: give season")
        season_days = days * self.season_fraction(season)
        s = self.config["sampling"]
        return (record + record * members * self.season_fraction(season),
                self.denoiser_mpix(region, season_days, members, s["steps"]))


def _days(period: Sequence[str], step: str = "day") -> int:
    return len(timesteps.in_period(period[0], period[1], step))
