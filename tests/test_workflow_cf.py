"""Every netCDF file of a test-size run passes compliance-checker's CF-1.8 and ACDD-1.3 checks.

The run is the session's whole-chain run (conftest.full_run). A file passes when no
check of high priority fails: CF's errors and ACDD's highly recommended attributes
(``compliance-checker --test cf:1.8 --test acdd FILE`` lists the same).
"""

from __future__ import annotations

import netCDF4
import pytest
from cf_checker import failures, require_checker

from diffscale.core import chunks

GROUPS = {
    "raw": ["data/raw/coarse/*.nc", "data/raw/fine/*.nc", "data/raw/elevation.nc"],
    "regrid": ["regrid/solo/*/*.nc"],
    "split": ["split/solo/*.nc"],
    "baseline_samples": ["samples/solo/winter/bicubic/*.nc", "samples/solo/winter/oracle/*.nc"],
    "method_samples": ["samples/solo/winter/diffusion/s0/*.nc", "samples/solo/winter/diffusion_no_transfer/s0/*.nc"],
    "product": ["downscaled/solo.nc"],
    "aggregates": ["downscaled/solo.monthly.nc", "downscaled/solo.annual.nc"],
}


@pytest.mark.slow
@pytest.mark.parametrize("group", list(GROUPS))
def test_every_file_passes_the_cf_and_acdd_checkers(full_run, group):
    require_checker()
    paths = sorted(p for pattern in GROUPS[group] for p in (full_run / "results").glob(pattern))
    assert paths, f"no files of {GROUPS[group]}"
    found = {p.relative_to(full_run / "results"): failures(p) for p in paths}
    bad = {str(p): f for p, f in found.items() if f}
    assert not bad, "\n".join(f"{p}:\n" + "\n".join(f"  {name}: {'; '.join(msgs)}" for name, msgs in f.items())
                              for p, f in bad.items())


@pytest.mark.slow
def test_product_and_samples_are_chunked_for_maps_and_series(full_run):
    res = full_run / "results"
    for path, name in ((res / "downscaled/solo.nc", "DUEXTTAU_members"),
                       (res / "samples/solo/winter/diffusion/s0/beyond.nc", "DUEXTTAU")):
        with netCDF4.Dataset(path) as nc:
            var = nc[name]
            want = chunks.chunk_sizes(dict(zip(var.dimensions, var.shape)))
            assert var.chunking() == list(want.values()), path
            assert "_FillValue" not in nc["lat"].ncattrs() and nc["time"].bounds == "time_bnds"
