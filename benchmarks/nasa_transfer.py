"""What one day costs over OPeNDAP with the paper's regions: requests, bytes, seconds.

Serves one synthetic MERRA-2 granule and one day of the G5NR aggregate (real names,
variables and global grids) from pydap's server on 127.0.0.1, as the tests do, and
downloads them with the workflow's client over the union of the paper's regions plus
the margin. Prints the bytes received against the size of the whole variable.

    PYTHONPATH=src python benchmarks/nasa_transfer.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from opendap_server import Gate, nasa_config, serve, write_g5nr_aggregate, write_merra2_granule  # noqa: E402

from diffscale.core.config import load_config  # noqa: E402
from diffscale.core.grids import Box, g5nr_grid, merra2_grid  # noqa: E402
from diffscale.data.sources import nasa  # noqa: E402


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    cfg = load_config(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")
    boxes = [Box.from_config(b) for b in cfg["regions"].values()]
    margin = cfg["data"]["margin_deg"]
    cbox, fbox = nasa.coarse_box(boxes, margin), nasa.fine_box(boxes, margin)
    day = pd.Timestamp("2006-01-31")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "srv"
        written = ((fbox.lat[0] - 1, fbox.lat[1] + 1), (fbox.lon[0] - 1, fbox.lon[1] + 1))
        write_merra2_granule(root, day, written)
        write_g5nr_aggregate(root, pd.DatetimeIndex([day]), written)
        server = serve(root, Gate("u", "p"))
        os.environ["EARTHDATA_USERNAME"], os.environ["EARTHDATA_PASSWORD"] = "u", "p"
        try:
            ncfg = nasa_config(server.url)
            for name, box, grid, steps, full in (
                ("MERRA-2", cbox, merra2_grid(cbox), 24, 24 * 361 * 576 * 4),
                ("G5NR", fbox, g5nr_grid(fbox), 48, 48 * 2881 * 5760 * 4),
            ):
                fetcher = nasa.open_fetcher(ncfg)
                t0 = time.perf_counter()
                nasa.download_month(nasa.Collection.from_config(ncfg["merra2" if name == "MERRA-2" else "g5nr"]),
                                    fetcher, 2006, 1, ("2006-01-31", "2006-01-31"), box, Path(tmp) / f"{name}.nc",
                                    "DUEXTTAU", {"units": "1"}, grid)
                dt = time.perf_counter() - t0
                print(f"{name}: one day, {grid.lat.size} x {grid.lon.size} cells x {steps} steps: "
                      f"{fetcher.requests_made} requests, {fetcher.bytes_received / 1e6:.2f} MB received "
                      f"(whole-globe variable for the day: {full / 1e6:.0f} MB), {dt:.1f} s on 127.0.0.1")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
