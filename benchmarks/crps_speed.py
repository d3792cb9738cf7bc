"""The project's ensemble CRPS (diffscale.core.metrics.crps_points) against maintained libraries.

properscoring's ``crps_ensemble`` gives the CRPS of the ensemble as issued (the summary's
``crps``); the fair CRPS (``crps_fair``) follows from it and the members' mean absolute
error: fair = mae - (mae - issued) * M / (M - 1). ``scores`` and ``xskillscore`` are timed
only when installed. Each job is (M members, 30 days, 64 x 64 pixels), float64, as
summary.csv scores them; both results must agree to rounding. Without numba, properscoring
holds every pair of members at once (M^2 x the field's memory: 32 members, 0.9 GB here), so
larger ensembles are left to ``--members``.

    PYTHONPATH=src .venv/bin/python benchmarks/crps_speed.py [--repeat 3] [--members 6 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import timeit

import numpy as np
import properscoring

from diffscale.core.metrics import crps_points


def best_of(fn, repeat: int) -> tuple[float, np.ndarray]:
    """(best time of ``repeat`` calls, fn's result)."""
    return min(timeit.repeat(fn, number=1, repeat=repeat)), fn()


def properscoring_fair(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    m = x.shape[0]
    issued = properscoring.crps_ensemble(y, np.moveaxis(x, 0, -1))
    mae = np.mean(np.abs(x - y), axis=0)
    return mae - (mae - issued) * m / (m - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--members", type=int, nargs="+", default=[6, 32])
    args = parser.parse_args()
    others = [name for name in ("scores", "xskillscore") if importlib.util.find_spec(name)]
    print(f"job: M members x 30 days x 64 x 64 pixels, float64; best of {args.repeat}; numba "
          f"{'installed' if importlib.util.find_spec('numba') else 'absent (properscoring runs its numpy path)'}; "
          f"also timed: {', '.join(others) or 'none (scores, xskillscore not installed)'}")
    print(f"{'M':>4} {'crps ours':>10} {'properscoring':>14} {'fair ours':>10} {'fair prop.':>11} {'max abs diff':>13}")
    rng = np.random.default_rng(0)
    for m in args.members:
        y = rng.normal(size=(30, 64, 64))
        x = y + rng.normal(size=(m, *y.shape))
        t_ours, ours = best_of(lambda: crps_points(y, x, fair=False), args.repeat)
        t_prop, prop = best_of(lambda: properscoring.crps_ensemble(y, np.moveaxis(x, 0, -1)), args.repeat)
        t_fair, fair = best_of(lambda: crps_points(y, x), args.repeat)
        t_pfair, pfair = best_of(lambda: properscoring_fair(y, x), args.repeat)
        diff = max(float(np.abs(ours - prop).max()), float(np.abs(fair - pfair).max()))
        print(f"{m:>4} {t_ours:>9.3f}s {t_prop:>13.3f}s {t_fair:>9.3f}s {t_pfair:>10.3f}s {diff:>13.2e}")
        if "xskillscore" in others:
            import xarray as xr
            import xskillscore

            xo = xr.DataArray(y, dims=("time", "lat", "lon"))
            xf = xr.DataArray(x, dims=("member", "time", "lat", "lon"))
            t_xs, _ = best_of(lambda: xskillscore.crps_ensemble(xo, xf, dim=[]).values, args.repeat)
            print(f"{'':>4} xskillscore crps_ensemble: {t_xs:.3f}s")
        if "scores" in others:
            import xarray as xr
            from scores.probability import crps_for_ensemble

            xo = xr.DataArray(y, dims=("time", "lat", "lon"))
            xf = xr.DataArray(x, dims=("member", "time", "lat", "lon"))
            t_sc, _ = best_of(lambda: crps_for_ensemble(xf, xo, "member", method="fair", preserve_dims="all").values,
                              args.repeat)
            print(f"{'':>4} scores crps_for_ensemble (fair): {t_sc:.3f}s")


if __name__ == "__main__":
    main()
