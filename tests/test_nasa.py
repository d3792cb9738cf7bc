"""The nasa source against a real OPeNDAP server on 127.0.0.1 (see opendap_server.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from opendap_server import (MASKED_ALL_DAY, MASKED_HALF_DAY, Gate, g5nr_value, merra2_value, nasa_config, serve,
                            write_g5nr_aggregate, write_g5nr_const, write_merra2_granule)

from diffscale.core.config import load_config
from diffscale.core.grids import Box, g5nr_grid, merra2_grid
from diffscale.data.sources import nasa, opendap

REPO = Path(__file__).resolve().parents[1]
USER, PASSWORD = "dust-user", "s3cret-Pa55word!"
REGION = Box((30.0, 31.0), (60.0, 61.25))
MARGIN = 0.5
COARSE_PERIOD = ("2006-01-30", "2006-02-02")
FINE_PERIOD = ("2006-01-31", "2006-02-01")
ATTRS = {"long_name": "Dust Extinction AOT [550 nm]", "units": "1"}


@pytest.fixture(scope="module")
def granules(tmp_path_factory) -> Path:
    """Synthetic NASA granules, written once for the module."""
    root = tmp_path_factory.mktemp("server")
    written = ((28.0, 33.0), (58.0, 63.0))  # a box around the download boxes
    for day in pd.date_range(*COARSE_PERIOD):
        write_merra2_granule(root, day, written)
    write_g5nr_aggregate(root, pd.date_range("2006-01-29", "2006-02-03"), written)
    write_g5nr_const(root, written)
    return root


@pytest.fixture
def server(granules):
    running = serve(granules, Gate(USER, PASSWORD))
    yield running
    running.stop()


@pytest.fixture
def netrc(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.1 login {USER} password {PASSWORD}\n")
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    monkeypatch.delenv("EARTHDATA_USERNAME", raising=False)
    monkeypatch.delenv("EARTHDATA_PASSWORD", raising=False)
    return path


def fetcher_for(cfg: dict) -> opendap.Fetcher:
    return nasa.open_fetcher(cfg)


# ---------------------------------------------------------------------------- pure pieces


def test_stream_numbers_and_granule_names_follow_merra2():
    cfg = load_config(REPO / "config" / "paper.yaml")["data"]["nasa"]
    merra2 = nasa.Collection.from_config(cfg["merra2"])
    expected = {"1991-12-31": 100, "1992-01-01": 200, "2000-12-31": 200, "2001-01-01": 300, "2010-12-31": 300,
                "2011-01-01": 400, "2020-08-31": 400, "2020-09-15": 401, "2021-07-01": 401, "2024-12-31": 400}
    assert {d: merra2.stream(pd.Timestamp(d)) for d in expected} == expected
    assert merra2.url_for(pd.Timestamp("2006-01-31")) == (
        "https://goldsmr4.gesdisc.eosdis.nasa.gov/opendap/MERRA2/M2T1NXAER.5.12.4/2006/01/"
        "MERRA2_300.tavg1_2d_aer_Nx.20060131.nc4")
    g5nr = nasa.Collection.from_config(cfg["g5nr"])
    assert g5nr.url_for(pd.Timestamp("2006-01-31")).endswith("/dods/OSSE/G5NR/Ganymed/7km/0.0625_deg/inst/inst30mn_2d_aer1_Nx")


def test_index_box_daily_mean_and_backoff():
    lat = -90 + 0.5 * np.arange(361)
    assert opendap.index_range(lat, 29.5, 31.5) == (239, 243)
    assert opendap.index_range(lat[::-1], 29.5, 31.5) == (117, 121)
    with pytest.raises(ValueError, match="fewer than 2"):
        opendap.index_range(lat, 95, 99)
    steps = np.array([[[1.0, np.nan]], [[3.0, np.nan]]])  # (2 steps, 1, 2)
    np.testing.assert_array_equal(opendap.daily_mean(steps), [[2.0, np.nan]])
    assert [opendap.backoff_delay(a, 2.0) for a in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert opendap.backoff_delay(20, 2.0) == 300.0
    assert opendap.hyperslab([(0, 23), (5, 9)]) == "[0:1:23][5:1:9]"


def test_grid_answers_as_hyrax_and_gds_send_them():
    """Hyrax (GES DISC) and GDS (NCCS) wrap variables in DAP2 Grids; pydap's server does not."""
    from pydap.model import BaseType, DatasetType, GridType
    from pydap.responses.das import DASResponse
    from pydap.responses.dds import DDSResponse
    from pydap.responses.dods import DODSResponse

    ds = DatasetType("MERRA2_300.tavg1_2d_aer_Nx.20060131.nc4")
    grid = GridType("DUEXTTAU", attributes={"_FillValue": 1e15, "units": "1"})  # the DAS lists them under the Grid
    grid["DUEXTTAU"] = BaseType("DUEXTTAU", np.arange(24, dtype="f4").reshape(2, 3, 4), dims=("time", "lat", "lon"))
    grid["time"] = BaseType("time", np.array([0, 60], dtype="i4"), dims=("time",))
    grid["lat"] = BaseType("lat", np.array([29.5, 30.0, 30.5]), dims=("lat",))
    grid["lon"] = BaseType("lon", np.array([60.0, 60.625, 61.25, 61.875]), dims=("lon",))
    ds["DUEXTTAU"] = grid
    var = opendap.RemoteVariable.describe("u", b"".join(DDSResponse(ds)).decode(),
                                       lambda: b"".join(DASResponse(ds)).decode(), "duexttau")
    assert (var.name, var.dims, var.shape) == ("DUEXTTAU", ["time", "lat", "lon"], (2, 3, 4))
    assert var.attrs["_FillValue"] == 1e15
    got = opendap.parse_dods(b"".join(DODSResponse(ds)))
    np.testing.assert_array_equal(got["DUEXTTAU"], np.arange(24).reshape(2, 3, 4))
    np.testing.assert_array_equal(got["lat"], [29.5, 30.0, 30.5])


def test_missing_login_says_how_to_fix_it(tmp_path):
    env = {"NETRC": str(tmp_path / "absent")}
    with pytest.raises(opendap.EarthdataAuthError, match=r"machine urs\.earthdata\.nasa\.gov.*~/\.netrc.*chmod 600"):
        opendap.earthdata_credentials("urs.earthdata.nasa.gov", env)
    creds = opendap.earthdata_credentials("x", {"EARTHDATA_USERNAME": "u", "EARTHDATA_PASSWORD": PASSWORD})
    assert PASSWORD not in repr(creds)
    broken = tmp_path / "netrc"
    broken.write_text(f"machine urs.earthdata.nasa.gov login u password {PASSWORD} oops\n")
    with pytest.raises(opendap.EarthdataAuthError, match="malformed") as err:
        opendap.earthdata_credentials("urs.earthdata.nasa.gov", {"NETRC": str(broken)})
    assert PASSWORD not in "".join(traceback.format_exception(err.value))


# ---------------------------------------------------------------------------- against the server


def test_merra2_month_end_to_end(server, netrc, tmp_path):
    cfg = nasa_config(server.url)
    fetcher = fetcher_for(cfg)
    box = nasa.coarse_box([REGION], MARGIN)
    out = tmp_path / "coarse" / "2006-01.nc"
    nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher, 2006, 1, COARSE_PERIOD, box, out,
                        "DUEXTTAU", ATTRS, expected=merra2_grid(box))
    ds = xr.open_dataset(out)
    grid = merra2_grid(box)
    np.testing.assert_array_equal(ds.lat, grid.lat)
    np.testing.assert_array_equal(ds.lon, grid.lon)
    assert list(pd.DatetimeIndex(ds.time.values).strftime("%Y-%m-%d")) == ["2006-01-30", "2006-01-31"]
    assert ds.DUEXTTAU.attrs["units"] == "1"
    for k, day in enumerate(pd.date_range("2006-01-30", "2006-01-31")):
        want = merra2_value(day, np.array([11.5]), grid.lat, grid.lon)[0]  # mean of hours 0..23
        want[grid.lat == MASKED_ALL_DAY[0], grid.lon == MASKED_ALL_DAY[1]] = np.nan
        half = merra2_value(day, np.array([17.5]), grid.lat, grid.lon)[0]   # mean of hours 12..23
        iy, ix = np.flatnonzero(grid.lat == MASKED_HALF_DAY[0])[0], np.flatnonzero(grid.lon == MASKED_HALF_DAY[1])[0]
        want[iy, ix] = half[iy, ix]
        np.testing.assert_allclose(ds.DUEXTTAU.values[k], want, rtol=1e-5)
    # Server-side subsetting: per daily granule its DDS, DAS, coordinates and one data
    # request, and the data request names the variable and an index box.
    assert fetcher.requests_made == server.count(r"MERRA2_300") == 8
    data = [r for r in server.gate.requests if ".dods?DUEXTTAU" in r]
    assert data == [f"/opendap/MERRA2/M2T1NXAER.5.12.4/2006/01/MERRA2_300.tavg1_2d_aer_Nx.2006013{d}.nc4.dods"
                    f"?DUEXTTAU[0:1:23][239:1:243][384:1:386]" for d in (0, 1)]


def test_g5nr_month_and_elevation(server, netrc, tmp_path):
    cfg = nasa_config(server.url)
    fetcher = fetcher_for(cfg)
    box = nasa.fine_box([REGION], MARGIN)
    out = tmp_path / "fine" / "2006-02.nc"
    nasa.download_month(nasa.Collection.from_config(cfg["g5nr"]), fetcher, 2006, 2, FINE_PERIOD, box, out,
                        "DUEXTTAU", ATTRS, expected=g5nr_grid(box))
    ds = xr.open_dataset(out)
    grid = g5nr_grid(box)
    np.testing.assert_array_equal(ds.lat, grid.lat)
    np.testing.assert_array_equal(ds.lon, grid.lon)
    assert list(pd.DatetimeIndex(ds.time.values)) == [pd.Timestamp("2006-02-01")]
    want = g5nr_value(pd.Timestamp("2006-02-01"), np.array([23.5]), grid.lat, grid.lon)[0]  # mean of 48 steps
    np.testing.assert_allclose(ds.DUEXTTAU.values[0], want, rtol=1e-5)
    # The fine grid covers the coarse cells, as in the synthetic twin.
    coarse = merra2_grid(nasa.coarse_box([REGION], MARGIN))
    assert grid.lat[0] <= coarse.lat_bounds[0] and grid.lat[-1] >= coarse.lat_bounds[-1] - 0.0625

    elev = tmp_path / "elevation.nc"
    nasa.download_elevation(nasa.Collection.from_config(cfg["elevation"]), fetcher, box, elev, FINE_PERIOD[0])
    e = xr.open_dataset(elev).elevation
    assert e.dims == ("lat", "lon") and e.attrs["units"] == "m"
    np.testing.assert_allclose(e.values, 1000.0 + 10.0 * grid.lat[:, None] + grid.lon[None, :], rtol=1e-5)


def test_a_month_on_an_unexpected_grid_is_refused_and_not_written(server, netrc, tmp_path):
    cfg = nasa_config(server.url)
    box = nasa.coarse_box([REGION], MARGIN)
    out = tmp_path / "coarse" / "2006-02.nc"
    with pytest.raises(nasa.io.DataValidationError, match=r"2006-02\.nc: grid 5 x 3 .* is not the expected 41 x 31"):
        nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 2, COARSE_PERIOD, box,
                            out, "DUEXTTAU", ATTRS, expected=g5nr_grid(nasa.fine_box([REGION], MARGIN)))
    assert not out.exists() and list(out.parent.glob("*")) == []


def test_transient_errors_are_retried(server, netrc, tmp_path):
    failures = []

    def fail_twice(target: str) -> int | None:
        if ".dods?DUEXTTAU" in target and len(failures) < 2:
            failures.append(target)
            return 503
        return None

    server.gate.fail = fail_twice
    cfg = nasa_config(server.url, retries=3)
    out = tmp_path / "2006-02.nc"
    nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 2, COARSE_PERIOD,
                        nasa.coarse_box([REGION], MARGIN), out, "DUEXTTAU", ATTRS)
    assert len(failures) == 2 and out.exists()
    assert server.count(r"\.dods\?DUEXTTAU") == 2 + 2  # two days, the first asked three times


def test_permanent_error_names_url_and_status_and_leaves_nothing(server, netrc, tmp_path):
    server.gate.fail = lambda t: 404 if "20060131" in t else None
    cfg = nasa_config(server.url)
    out = tmp_path / "coarse" / "2006-01.nc"
    with pytest.raises(opendap.DownloadError) as err:
        nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 1, COARSE_PERIOD,
                            nasa.coarse_box([REGION], MARGIN), out, "DUEXTTAU", ATTRS)
    message = str(err.value)
    assert "MERRA2_300.tavg1_2d_aer_Nx.20060131.nc4" in message and "HTTP 404" in message
    assert PASSWORD not in message and USER not in message
    assert not out.exists() and list(out.parent.glob("*")) == []
    # 404 is permanent: asked once, not retried
    assert server.count("20060131") == 1


def test_transient_error_gives_up_after_retries(server, netrc, tmp_path):
    server.gate.fail = lambda t: 500 if ".dods?DUEXTTAU" in t else None
    cfg = nasa_config(server.url, retries=2)
    with pytest.raises(opendap.DownloadError, match=r"MERRA2_300\.tavg1_2d_aer_Nx\.20060130\.nc4.*HTTP 500"):
        nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 1, COARSE_PERIOD,
                            nasa.coarse_box([REGION], MARGIN), tmp_path / "x.nc", "DUEXTTAU", ATTRS)
    assert server.count(r"\.dods\?DUEXTTAU") == 3


def test_wrong_login_is_a_clear_error_without_the_secret(server, tmp_path, monkeypatch):
    wrong = "Wr0ng-" + PASSWORD
    monkeypatch.setenv("EARTHDATA_USERNAME", USER)
    monkeypatch.setenv("EARTHDATA_PASSWORD", wrong)
    cfg = nasa_config(server.url)
    with pytest.raises(opendap.EarthdataAuthError) as err:
        nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 1, COARSE_PERIOD,
                            nasa.coarse_box([REGION], MARGIN), tmp_path / "x.nc", "DUEXTTAU", ATTRS)
    text = "".join(traceback.format_exception(err.value))
    assert "HTTP 401" in text and "~/.netrc" in text and "EARTHDATA_USERNAME" in text
    assert wrong not in text and PASSWORD not in text
    assert server.count(".") == 1  # rejected at the first request, not retried


# ---------------------------------------------------------------------------- through Snakemake


def workflow_config(tmp_path: Path, url: str) -> Path:
    cfg = {
        "data": {"source": "nasa", "coarse_period": list(COARSE_PERIOD), "fine_period": list(FINE_PERIOD),
                 "margin_deg": MARGIN, "raw_dir": "raw", "nasa": nasa_config(url, retries=1)},
        "regions": {"r": {"lat": list(REGION.lat), "lon": list(REGION.lon)}},
        "seasons": {"DJF": [12, 1, 2]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


TARGETS = ["raw/coarse/2006-01.nc", "raw/coarse/2006-02.nc", "raw/fine/2006-01.nc", "raw/fine/2006-02.nc",
           "raw/elevation.nc"]


def snakemake(tmp_path: Path, config: Path, netrc_path: Path, *extra: str, **kw) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "NETRC": str(netrc_path)}
    env.pop("EARTHDATA_USERNAME", None)
    env.pop("EARTHDATA_PASSWORD", None)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "--configfile", str(config), *extra, *TARGETS]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def all_text(tmp_path: Path, output: str) -> str:
    logs = [p.read_text(errors="replace") for p in (tmp_path / "results" / "logs").rglob("*.log")]
    return output + "".join(logs)


@pytest.mark.slow
def test_workflow_server_error_then_rerun_fetches_only_what_is_missing(server, netrc, tmp_path):
    config = workflow_config(tmp_path, server.url)
    server.gate.fail = lambda t: 500 if "MERRA2_300.tavg1_2d_aer_Nx.200602" in t else None
    run = snakemake(tmp_path, config, netrc, "-c2", "--keep-going")
    out, _ = run.communicate(timeout=300)
    assert run.returncode != 0, out
    assert "HTTP 500" in all_text(tmp_path, out)
    done = {t for t in TARGETS if (tmp_path / t).exists()}
    assert done == set(TARGETS) - {"raw/coarse/2006-02.nc"}, out
    assert not [p for p in (tmp_path / "raw").rglob("*") if p.is_file() and p.suffix != ".nc"]

    server.gate.fail = lambda t: None
    server.gate.requests.clear()
    run = snakemake(tmp_path, config, netrc, "-c2")
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out
    assert all((tmp_path / t).exists() for t in TARGETS)
    # Only February's MERRA-2 granules were asked for again (4 requests a day, 2 days).
    assert len(server.gate.requests) == server.count(r"MERRA2_300\.tavg1_2d_aer_Nx\.2006020[12]") == 8
    assert PASSWORD not in all_text(tmp_path, out)


@pytest.mark.slow
def test_workflow_kill_then_rerun_fetches_only_what_is_missing(server, netrc, tmp_path):
    config = workflow_config(tmp_path, server.url)
    server.gate.hold = lambda t: ".dods?DUEXTTAU" in t and "20060202" in t
    run = snakemake(tmp_path, config, netrc, "-c2")
    others = [tmp_path / t for t in TARGETS if t != "raw/coarse/2006-02.nc"]
    deadline = time.time() + 240
    incomplete = tmp_path / ".snakemake" / "incomplete"

    def only_february_running() -> bool:  # the other jobs finished and recorded as such by Snakemake
        markers = [p for p in incomplete.rglob("*") if p.is_file()] if incomplete.exists() else []
        return all(p.exists() for p in others) and len(markers) == 1

    while not (only_february_running() and server.count(r"20060202\.nc4\.dods\?DUEXTTAU")):
        assert run.poll() is None and time.time() < deadline, run.communicate()[0] if run.poll() is not None else "timeout"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)  # the whole job tree, mid-download
    run.communicate()
    server.gate.release.set()
    assert not (tmp_path / "raw/coarse/2006-02.nc").exists()

    # A hard kill leaves Snakemake's lock behind; the user unlocks (as Snakemake says) and reruns.
    unlock = snakemake(tmp_path, config, netrc, "--unlock")
    assert unlock.wait(timeout=120) == 0
    server.gate.hold = lambda t: False
    server.gate.requests.clear()
    run = snakemake(tmp_path, config, netrc, "-c2")
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out
    assert len(server.gate.requests) == server.count(r"MERRA2_300\.tavg1_2d_aer_Nx\.2006020[12]") == 8, "\n".join(server.gate.requests)


@pytest.mark.slow
def test_workflow_wrong_login_fails_clearly_and_logs_no_secret(server, tmp_path):
    wrong = "Not-The-" + PASSWORD
    netrc_path = tmp_path / "netrc"
    netrc_path.write_text(f"machine 127.0.0.1 login {USER} password {wrong}\n")
    netrc_path.chmod(0o600)
    run = snakemake(tmp_path, workflow_config(tmp_path, server.url), netrc_path, "-c1")
    out, _ = run.communicate(timeout=300)
    assert run.returncode != 0
    text = all_text(tmp_path, out)
    assert "rejected the Earthdata login" in text and "~/.netrc" in text
    assert wrong not in text and PASSWORD not in text
    written = [p for p in (tmp_path / "raw").rglob("*") if p.is_file()] if (tmp_path / "raw").exists() else []
    assert written == []


def test_earthdata_redirect_flow_and_unapproved_application(server, tmp_path, monkeypatch):
    """The login host (localhost here) is a different host from the data host (127.0.0.1)."""
    server.gate.urs = True
    path = tmp_path / "netrc"
    path.write_text(f"machine localhost login {USER} password {PASSWORD}\n")
    monkeypatch.setenv("NETRC", str(path))
    cfg = nasa_config(server.url) | {"auth_host": "localhost"}
    out = tmp_path / "2006-02.nc"
    nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 2, COARSE_PERIOD,
                        nasa.coarse_box([REGION], MARGIN), out, "DUEXTTAU", ATTRS)
    assert out.exists()
    assert server.count("/oauth/authorize") == 1  # logged in once; the session cookie did the rest
    # the password went to the login host only, never to the data host
    assert len(server.gate.authorized) == 1 and server.gate.authorized[0].startswith("localhost:")

    server.gate.approved = False
    with pytest.raises(opendap.EarthdataAuthError, match="application approved") as err:
        nasa.download_month(nasa.Collection.from_config(cfg["merra2"]), fetcher_for(cfg), 2006, 1, COARSE_PERIOD,
                            nasa.coarse_box([REGION], MARGIN), tmp_path / "x.nc", "DUEXTTAU", ATTRS)
    assert PASSWORD not in "".join(traceback.format_exception(err.value))
