"""The README's results tables, written from the demo's ``summary.csv`` and ``comparisons.csv``.

The numbers between the README's markers come from files only, never typed by hand.
``make demo`` (and ``make seeds``) copy the run's ``results/metrics/summary.csv`` and
``comparisons.csv`` to ``docs/results/``, a snapshot kept in git, and rewrite the block
from it (:func:`refresh`). The tests do not run the demo; they check that the README's
block is exactly :func:`render` of the snapshot, so a table edited by hand, or a snapshot
refreshed without its table, fails them.

A difference between a model and the method is stated only with its paired interval, and a
model is called better only where that interval excludes 0.

The README has one block per run it reports (:data:`BLOCKS`), each between its own markers and
from its own snapshot: the demo's (``make demo``), the ablations' rows of the demo with
``config/ablation.yaml`` (``make ablation``), the transport twin's (``make transport``) and
its bottleneck-features experiment's (``make transport-bottleneck``).

Command line (what ``make readme-results`` runs; ``--block NAME`` for the other blocks,
whose snapshots are ``docs/results/NAME``)::

    python -m diffscale.evaluation.results_table --metrics results/metrics --snapshot docs/results --readme README.md
    python -m diffscale.evaluation.results_table --snapshot docs/results --readme README.md --check
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from diffscale.core import io, registry

START = "<!-- results:start -->"
END = "<!-- results:end -->"


@dataclass(frozen=True)
class Block:
    """One results block of the README: its markers' name, its snapshot, which models it shows."""

    name: str  # "" for the demo's block (markers results:start / results:end)
    snapshot: str  # the snapshot folder, relative to the repository
    target: str  # the make target that runs it and refreshes the block
    models: tuple[str, ...] | None = None  # rows shown (summary and comparisons); None: every model

    @property
    def markers(self) -> tuple[str, str]:
        if not self.name:
            return START, END
        return f"<!-- results:{self.name}:start -->", f"<!-- results:{self.name}:end -->"


BLOCKS = {b.name: b for b in (
    Block("", "docs/results", "demo"),
    # The demo's own rows are the demo block's: this one shows the method and its two ablations.
    Block("ablation", "docs/results/ablation", "ablation", ("diffusion", "diffusion_no_transfer", "diffusion_from_coarse")),
    Block("transport", "docs/results/transport", "transport"),
    # An experiment: the transfer models with the encoder's bottleneck alone, beside the ablation.
    Block("transport_bottleneck", "docs/results/transport_bottleneck", "transport-bottleneck",
          ("unet", "transfer_unet", "diffusion", "diffusion_no_transfer")),
)}
FILES = ("summary.csv", "comparisons.csv")
WITH_INTERVALS = (("rmse", "RMSE"), ("crps_fair", "CRPS (fair)"), ("r2", "R2"))
PLAIN = (("spread_skill", "spread/skill"), ("spectral_ratio", "spectral ratio"))
NO_SNAPSHOT = ("No demo results are recorded yet: `make demo` runs the demo and writes its tables here "
               "(from `docs/results/`).")


def _no_snapshot(label: str, target: str) -> str:
    if target == "demo":
        return NO_SNAPSHOT
    return (f"No results are recorded yet: `make {target}` runs it and writes its tables here "
            f"(from `{label}/`).")

PathLike = str | os.PathLike


def _number(value: float, fmt: str = ".3f") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _with_interval(value: float, lo: float, hi: float, fmt: str = ".3f") -> str:
    if any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        return _number(value, fmt)
    return f"{_number(value, fmt)} [{_number(lo, fmt)}, {_number(hi, fmt)}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _verdict(row: pd.Series) -> str:
    cell = _with_interval(row["difference"], row["lo"], row["hi"], "+.4f")
    if not row["excludes_zero"]:
        return f"{cell}, not resolved"
    return f"{cell}, {row['better']} better"


def _read(snapshot: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for name in FILES:
        try:
            frames.append(pd.read_csv(snapshot / name, keep_default_na=False, na_values=[""]))
        except Exception as exc:  # pandas raises several kinds for a broken CSV
            raise io.DataValidationError(snapshot / name, f"cannot be read as a results table ({exc})") from exc
    return frames[0], frames[1]


def render(snapshot: PathLike, label: str = "docs/results", models: tuple[str, ...] | None = None,
           target: str = "demo") -> str:
    """The README's results block (without the markers) from the snapshot's two files; a note where there are none.

    label: how the block names the snapshot folder (the path relative to the repository).
    models: only these models' rows (None: every model). target: the make target the note names.
    """
    snapshot = Path(snapshot)
    present = [(snapshot / name).exists() for name in FILES]
    if not any(present):
        return _no_snapshot(label, target)
    if not all(present):
        missing = [name for name, there in zip(FILES, present) if not there]
        raise io.DataValidationError(snapshot / missing[0], "missing: the snapshot needs both " + " and ".join(FILES))
    summary, comparisons = _read(snapshot)
    if models is not None:
        summary = summary[summary["model"].isin(models)]
        comparisons = comparisons[comparisons["model"].isin(models)]
    seeds = sorted({int(s) for s in summary["seeds"]}) if "seeds" in summary else [1]
    over = "days and seeds" if max(seeds) > 1 else "days"
    lines = [f"Scores from `{label}/summary.csv` (log10 space): the mean over training seeds, with the "
             f"95% bootstrap interval over {over} in brackets; `seeds` counts a model's training runs.", ""]
    header = ["region", "season", "period", "model", "seeds", "days", *(t for _, t in WITH_INTERVALS),
              *(t for _, t in PLAIN)]
    rows = []
    for r in summary.to_dict("records"):
        rows.append([r["region"], r["season"], r["period"], r["model"], str(int(r.get("seeds", 1))), str(int(r["days"])),
                     *(_with_interval(r[c], r.get(f"{c}_lo", math.nan), r.get(f"{c}_hi", math.nan))
                       for c, _ in WITH_INTERVALS),
                     *(_number(r[c], ".2f") for c, _ in PLAIN)])
    lines += _table(header, rows)
    reference = registry.METHOD
    lines += ["", f"Differences from the method, `{label}/comparisons.csv`: the model's score minus "
                  f"`{reference}`'s, with its 95% paired bootstrap interval (same days and seeds for both); a model is "
                  "called better only where the interval excludes 0, and otherwise the difference is not resolved.", ""]
    scores = list(dict.fromkeys(comparisons["score"]))
    rows = []
    keys = ["region", "season", "period", "model"]
    for key, group in comparisons.groupby(keys, sort=False):
        by_score = group.set_index("score")
        rows.append([*map(str, key), *(_verdict(by_score.loc[s]) if s in by_score.index else "n/a" for s in scores)])
    names = dict(WITH_INTERVALS)
    lines += _table([*keys, *(f"{names.get(s, s)} minus {reference}" for s in scores)], rows)
    return "\n".join(lines)


def _split(text: str, readme: PathLike, name: str = "") -> tuple[str, str, str]:
    start, end = BLOCKS[name].markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise io.DataValidationError(readme, f"needs one '{start}' line followed by one '{end}' line")
    head, rest = text.split(start)
    block, tail = rest.split(end)
    return head, block, tail


def readme_block(readme: PathLike, name: str = "") -> str:
    """What the README holds between the markers of block ``name``, without the blank lines around it."""
    return _split(Path(readme).read_text(), readme, name)[1].strip("\n")


def write_readme(readme: PathLike, block: str, name: str = "") -> None:
    head, _, tail = _split(Path(readme).read_text(), readme, name)
    start, end = BLOCKS[name].markers
    with io.atomic_path(readme) as tmp:
        Path(tmp).write_text(f"{head}{start}\n{block}\n{end}{tail}")
        shutil.copymode(readme, tmp)


def render_block(name: str, root: PathLike = ".") -> str:
    """Block ``name`` of :data:`BLOCKS` rendered from its snapshot under the repository ``root``."""
    b = BLOCKS[name]
    return render(Path(root) / b.snapshot, b.snapshot, b.models, b.target)


def refresh(metrics: PathLike, snapshot: PathLike, readme: PathLike, label: str = "docs/results",
            block: str = "") -> str:
    """Copy a run's summary.csv and comparisons.csv into the snapshot and rewrite the README's block ``block`` from it."""
    metrics, snapshot = Path(metrics), Path(snapshot)
    for name in FILES:
        if not (metrics / name).exists():
            raise io.DataValidationError(metrics / name, "missing: run the workflow first (make demo)")
    _split(Path(readme).read_text(), readme, block)  # the markers, before anything is copied
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        with io.atomic_path(snapshot / name) as tmp:
            shutil.copyfile(metrics / name, tmp)
            shutil.copymode(metrics / name, tmp)
    b = BLOCKS[block]
    text = render(snapshot, label, b.models, b.target)
    write_readme(readme, text, block)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m diffscale.evaluation.results_table", description=__doc__.split("\n")[0])
    ap.add_argument("--metrics", help="a run's results/metrics: copy its tables into the snapshot first")
    ap.add_argument("--block", default="", choices=list(BLOCKS),
                    help="which of the README's blocks (default: the demo's)")
    ap.add_argument("--snapshot", help="the snapshot folder (default: the block's, docs/results for the demo)")
    ap.add_argument("--readme", default="README.md")
    ap.add_argument("--check", action="store_true", help="only check that the README's block renders the snapshot")
    a = ap.parse_args(argv)
    b = BLOCKS[a.block]
    snapshot = a.snapshot or b.snapshot
    label = Path(snapshot).as_posix()
    if a.check:
        if readme_block(a.readme, a.block) != render(snapshot, label, b.models, b.target):
            print(f"{a.readme}: the results block differs from {snapshot}; run make {b.target}", file=sys.stderr)
            return 1
        return 0
    if a.metrics is None:
        write_readme(a.readme, render(snapshot, label, b.models, b.target), a.block)
    else:
        refresh(a.metrics, snapshot, a.readme, label, a.block)
    print(f"{a.readme}: results tables written from {snapshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
