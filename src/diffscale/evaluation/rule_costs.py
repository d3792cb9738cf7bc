"""What each rule of a run cost: wall time and peak memory from its Snakemake ``benchmark:`` files.

Every heavy rule writes ``<results>/benchmarks/<rule>/<wildcards>.tsv`` (Snakemake's
columns: ``s``, ``max_rss`` in MB, ``cpu_time``, ...). :func:`collect` sums them per rule
(jobs, total and longest wall time, the largest ``max_rss``), in the order the rules
first finished; :func:`render` makes the README's table. ``make paper-twin`` copies the
paper-size run's table to ``docs/results/paper_twin/rule_costs.csv`` and into README.md
between ``<!-- rule_costs:paper_twin:start -->`` and ``<!-- rule_costs:paper_twin:end -->``;
``tests/test_readme_results.py`` checks the two agree.

    python -m diffscale.evaluation.rule_costs --benchmarks results/paper_twin/benchmarks \\
        [--snapshot docs/results/paper_twin/rule_costs.csv --readme README.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import pandas as pd

from diffscale.core import io

PathLike = str | os.PathLike
COLUMNS = ["rule", "jobs", "wall_s", "longest_s", "max_rss_mb", "cpu_s"]
BLOCK = "paper_twin"


def collect(benchmarks: PathLike) -> pd.DataFrame:
    """One row per rule directory under ``benchmarks``: jobs, summed and longest wall time (s),
    the largest max_rss of a job (MB) and the summed CPU time (s)."""
    benchmarks = Path(benchmarks)
    rows = []
    for rule_dir in sorted(p for p in benchmarks.iterdir() if p.is_dir()) if benchmarks.is_dir() else []:
        files = sorted(rule_dir.glob("*.tsv"))
        if not files:
            continue
        frames = []
        for path in files:
            try:
                frame = pd.read_csv(path, sep="\t")
            except (OSError, ValueError) as exc:
                raise io.DataValidationError(path, f"cannot be read as a Snakemake benchmark file ({exc})") from exc
            missing = {"s", "max_rss"} - set(frame.columns)
            if missing or frame.empty:
                raise io.DataValidationError(path, f"is not a Snakemake benchmark file (lacks {sorted(missing) or 'rows'})")
            frames.append(frame.iloc[[-1]])  # the last repeat, as Snakemake writes one per --benchmark-repeats
        jobs = pd.concat(frames, ignore_index=True)
        rss = pd.to_numeric(jobs["max_rss"], errors="coerce")
        rows.append({"rule": rule_dir.name, "jobs": len(jobs), "wall_s": float(jobs["s"].sum()),
                     "longest_s": float(jobs["s"].max()), "max_rss_mb": float(rss.max()),
                     "cpu_s": float(pd.to_numeric(jobs.get("cpu_time", pd.Series(dtype=float)),
                                                  errors="coerce").sum()),
                     "_first": min(p.stat().st_mtime for p in files)})
    if not rows:
        raise io.DataValidationError(benchmarks, "holds no benchmark file (<rule>/<wildcards>.tsv): run the workflow first")
    return pd.DataFrame(rows).sort_values("_first", kind="stable")[COLUMNS].reset_index(drop=True)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def render(table: pd.DataFrame) -> str:
    """The README's table: per rule the jobs, wall and CPU time (all jobs; the longest job's wall
    time) and peak memory. CPU time says what a rule costs when other jobs share the cores."""
    lines = ["| rule | jobs | wall time, all jobs | CPU time, all jobs | longest job | max RSS of a job |",
             "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.rule} | {r.jobs} | {_minutes(r.wall_s)} | {_minutes(r.cpu_s)} | {_minutes(r.longest_s)} | "
                     f"{r.max_rss_mb:,.0f} MB |")
    lines.append(f"| all | {int(table['jobs'].sum())} | {_minutes(table['wall_s'].sum())} | "
                 f"{_minutes(table['cpu_s'].sum())} | | |")
    return "\n".join(lines)


def markers(name: str = BLOCK) -> tuple[str, str]:
    return f"<!-- rule_costs:{name}:start -->", f"<!-- rule_costs:{name}:end -->"


def readme_block(readme: PathLike, name: str = BLOCK) -> str:
    text, (start, end) = Path(readme).read_text(), markers(name)
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise io.DataValidationError(readme, f"needs one '{start}' line followed by one '{end}' line")
    return text.split(start)[1].split(end)[0].strip("\n")


def write_readme(readme: PathLike, block: str, name: str = BLOCK) -> None:
    old = readme_block(readme, name)  # checks the markers
    start, end = markers(name)
    text = Path(readme).read_text().replace(f"{start}\n{old}\n{end}" if old else f"{start}\n{end}",
                                            f"{start}\n{block}\n{end}", 1)
    with io.atomic_path(readme) as tmp:
        Path(tmp).write_text(text)
        shutil.copymode(readme, tmp)


def read_snapshot(path: PathLike) -> pd.DataFrame:
    table = pd.read_csv(path)
    if list(table.columns) != COLUMNS:
        raise io.DataValidationError(path, f"columns {list(table.columns)} are not the expected {COLUMNS}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", required=True, help="a run's benchmarks directory")
    parser.add_argument("--snapshot", help="write the table as CSV here (kept in git)")
    parser.add_argument("--readme", help="rewrite this README's rule_costs block from the snapshot")
    args = parser.parse_args(argv)
    try:
        table = collect(args.benchmarks)
        if args.snapshot:
            with io.atomic_path(args.snapshot) as tmp:
                table.to_csv(tmp, index=False, float_format="%.2f")
            table = read_snapshot(args.snapshot)
        if args.readme:
            write_readme(args.readme, render(table))
    except io.DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
