"""A real OPeNDAP (DAP2) server on 127.0.0.1 for the download tests.

pydap's own server (pydap.wsgi.app.DapServer, netCDF handler) serves synthetic granules
laid out like NASA's: MERRA-2 M2T1NXAER daily granules with their real file names,
variables and global 0.5 x 0.625 grid; the G5NR aerosol and constant collections as
GDS-style aggregated datasets on the global 0.0625 grid (lower-case variable names, time
in 'days since 1-1-1'). Only the test region's chunks hold values; the rest of the
global grid is unwritten (fill), so the files stay small.

In front of it, a small WSGI layer does what the real services add: an HTTP basic-auth
check (a wrong login gets 401), GDS-style extension-less dataset URLs, a log of every
request (to count what a rerun fetches), and injectable failures or pauses.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import netCDF4
import numpy as np
import pandas as pd
from pydap.handlers import netcdf_handler
from pydap.wsgi.app import DapServer

MERRA2_DIR = "opendap/MERRA2/M2T1NXAER.5.12.4"
G5NR_DIR = "dods/OSSE/G5NR/Ganymed/7km/0.0625_deg"
MASKED_ALL_DAY = (30.0, 60.0)   # MERRA-2 cell (lat, lon) missing at every hour: stays missing
MASKED_HALF_DAY = (30.5, 60.625)  # missing from 00:30 to 11:30: the mean of the other 12 hours


def _lazy_getitem(self, key):
    # pydap 3.5.9's netCDF handler reshapes every slice to the variable's full shape,
    # which breaks any index-constrained request of a 2-D or larger array; keep the
    # handler and reshape only when the whole variable was read.
    with netcdf_handler.netcdf_file(self.filepath, "r") as source:
        source.set_auto_scale(False)
        arr = np.asarray(source[self.path][key]).astype(self.dtype)
    return arr.reshape(self._reshape) if arr.size == int(np.prod(self._reshape)) else arr


netcdf_handler.LazyVariable.__getitem__ = _lazy_getitem


def merra2_value(day: pd.Timestamp, hour: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Synthetic DUEXTTAU at hour h (h + 0.5 UTC): (hours, lat, lon). Daily mean = value at h=11.5."""
    d = (day - pd.Timestamp("2000-01-01")).days
    return (0.05 + 0.001 * d + 0.002 * hour[:, None, None] + 0.0001 * lat[None, :, None]
            + 0.00001 * lon[None, None, :]).astype(np.float32)


def g5nr_value(day: pd.Timestamp, step: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Synthetic G5NR duexttau at 30-minute step s: (steps, lat, lon). Daily mean = value at s=23.5."""
    d = (day - pd.Timestamp("2000-01-01")).days
    return (0.03 + 0.001 * d + 0.001 * step[:, None, None] + 0.0002 * lat[None, :, None]
            + 0.00003 * lon[None, None, :]).astype(np.float32)


def phis_value(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    return (9.80665 * (1000.0 + 10.0 * lat[:, None] + lon[None, :])).astype(np.float32)


def _global_axis(n: int, start: float, step: float) -> np.ndarray:
    return start + step * np.arange(n)


def _coords(nc, lat: np.ndarray, lon: np.ndarray) -> None:
    nc.createDimension("lat", lat.size)
    nc.createDimension("lon", lon.size)
    v = nc.createVariable("lat", "f8", ("lat",))
    v.units, v.long_name = "degrees_north", "latitude"
    v[:] = lat
    v = nc.createVariable("lon", "f8", ("lon",))
    v.units, v.long_name = "degrees_east", "longitude"
    v[:] = lon


def _inside(axis: np.ndarray, lo: float, hi: float) -> slice:
    idx = np.flatnonzero((axis >= lo) & (axis <= hi))
    return slice(int(idx[0]), int(idx[-1]) + 1)


def write_merra2_granule(root: Path, day: pd.Timestamp, box: tuple[tuple[float, float], tuple[float, float]],
                         stream: int = 300) -> Path:
    """MERRA2_<stream>.tavg1_2d_aer_Nx.YYYYMMDD.nc4 on the global MERRA-2 grid, 24 hourly steps."""
    lat, lon = _global_axis(361, -90.0, 0.5), _global_axis(576, -180.0, 0.625)
    path = root / MERRA2_DIR / f"{day:%Y}" / f"{day:%m}" / f"MERRA2_{stream}.tavg1_2d_aer_Nx.{day:%Y%m%d}.nc4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 24)
        _coords(nc, lat, lon)
        t = nc.createVariable("time", "i4", ("time",))
        t.units, t.begin_date = f"minutes since {day:%Y-%m-%d} 00:30:00", f"{day:%Y%m%d}"
        t[:] = 60 * np.arange(24)
        v = nc.createVariable("DUEXTTAU", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, 91, 144),
                              fill_value=np.float32(1e15))
        v.units, v.long_name = "1", "Dust Extinction AOT [550 nm]"
        ys, xs = _inside(lat, *box[0]), _inside(lon, *box[1])
        values = merra2_value(day, np.arange(24.0), lat[ys], lon[xs])
        sub_lat, sub_lon = lat[ys], lon[xs]
        for (y, x), hours in ((MASKED_ALL_DAY, slice(None)), (MASKED_HALF_DAY, slice(0, 12))):
            values[hours, np.argmin(abs(sub_lat - y)), np.argmin(abs(sub_lon - x))] = 1e15
        v[:, ys, xs] = values
    return path


def write_g5nr_aggregate(root: Path, days: pd.DatetimeIndex, box) -> Path:
    """The GDS aggregate of inst30mn_2d_aer1_Nx: 48 steps a day, global 0.0625 deg grid."""
    lat, lon = _global_axis(2881, -90.0, 0.0625), _global_axis(5760, -180.0, 0.0625)
    path = root / G5NR_DIR / "inst" / "inst30mn_2d_aer1_Nx.nc4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 48 * len(days))
        _coords(nc, lat, lon)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 1-1-1 00:00:0.0"
        stamps = [d + pd.Timedelta(minutes=30 * s) for d in days for s in range(48)]
        t[:] = netCDF4.date2num([s.to_pydatetime() for s in stamps], t.units, calendar="standard")
        v = nc.createVariable("duexttau", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, 128, 128),
                              fill_value=np.float32(1e15))
        v.missing_value = np.float32(1e15)
        ys, xs = _inside(lat, *box[0]), _inside(lon, *box[1])
        for k, day in enumerate(days):
            v[48 * k:48 * (k + 1), ys, xs] = g5nr_value(day, np.arange(48.0), lat[ys], lon[xs])
    return path


def write_g5nr_const(root: Path, box) -> Path:
    lat, lon = _global_axis(2881, -90.0, 0.0625), _global_axis(5760, -180.0, 0.0625)
    path = root / G5NR_DIR / "const" / "const_2d_asm_Nx.nc4"
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", 1)
        _coords(nc, lat, lon)
        t = nc.createVariable("time", "f8", ("time",))
        t.units = "days since 1-1-1 00:00:0.0"
        t[:] = netCDF4.date2num([pd.Timestamp("2005-05-16").to_pydatetime()], t.units, calendar="standard")
        v = nc.createVariable("phis", "f4", ("time", "lat", "lon"), zlib=True, chunksizes=(1, 128, 128),
                              fill_value=np.float32(1e15))
        ys, xs = _inside(lat, *box[0]), _inside(lon, *box[1])
        v[0, ys, xs] = phis_value(lat[ys], lon[xs])
    return path


@dataclass
class Gate:
    """What the front layer does: the login, the request log, failures and pauses."""

    username: str
    password: str
    requests: list[str] = field(default_factory=list)
    authorized: list[str] = field(default_factory=list)  # host+path of requests that carried a login
    fail: Callable[[str], int | None] = lambda path: None  # path+query -> HTTP status to answer instead
    hold: Callable[[str], bool] = lambda path: False       # path+query -> wait for `release` first
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    netcdf_lock: threading.Lock = field(default_factory=threading.Lock)
    urs: bool = False       # Earthdata-style redirect to a login host (localhost) instead of basic auth
    approved: bool = True   # has the user approved the application at the login host?

    def __call__(self, app):
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

        def gate(environ, start_response):
            target = environ.get("PATH_INFO", "") + ("?" + unquote(environ["QUERY_STRING"]) if environ.get("QUERY_STRING") else "")
            with self.lock:
                self.requests.append(target)
                if environ.get("HTTP_AUTHORIZATION"):
                    self.authorized.append(environ.get("HTTP_HOST", "") + target)
            if self.urs:
                answer = self._urs(environ, start_response, expected)
                if answer is not None:
                    return answer
            elif environ.get("HTTP_AUTHORIZATION") != expected:
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="test"'), ("Content-Type", "text/plain")])
                return [b"login required"]
            status = self.fail(target)
            if status:
                start_response(f"{status} Injected", [("Content-Type", "text/plain")])
                return [b'Error {\n    code = 500;\n    message = "injected failure";\n};']
            if self.hold(target):
                self.release.wait(timeout=120)
            # GDS datasets have no file extension: map them onto the netCDF file.
            environ["PATH_INFO"] = re.sub(r"^(/dods/.*/[^/.]+)\.(dds|das|dods)$", r"\1.nc4.\2", environ["PATH_INFO"])
            with self.netcdf_lock:  # netCDF4/HDF5 is not thread-safe; the HTTP side stays concurrent
                return list(app(environ, start_response))

        return gate

    def _urs(self, environ, start_response, expected):
        """Earthdata's flow: data host -> login host (basic auth) -> data host callback (cookie) -> data."""
        host, path = environ.get("HTTP_HOST", ""), environ.get("PATH_INFO", "")
        port = host.rsplit(":", 1)[-1]
        if path == "/oauth/authorize":
            if environ.get("HTTP_AUTHORIZATION") != expected:
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="URS"'), ("Content-Type", "text/plain")])
                return [b"bad login"]
            if not self.approved:
                start_response("200 OK", [("Content-Type", "text/html")])
                return [b"<html>Authorize application NASA GESDISC DATA ARCHIVE?</html>"]
            back = parse_qs(environ.get("QUERY_STRING", ""))["redirect_uri"][0]
            start_response("302 Found", [("Location", f"http://127.0.0.1:{port}/urs_callback?next={quote(back, safe='')}")])
            return [b""]
        if path == "/urs_callback":
            nxt = parse_qs(environ.get("QUERY_STRING", ""))["next"][0]
            start_response("302 Found", [("Location", nxt), ("Set-Cookie", "urs_session=ok; Path=/")])
            return [b""]
        if "urs_session=ok" not in environ.get("HTTP_COOKIE", ""):
            here = f"http://{host}{quote(path)}" + (f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else "")
            start_response("302 Found", [("Location", f"http://localhost:{port}/oauth/authorize?redirect_uri={quote(here, safe='')}")])
            return [b""]
        return None


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@dataclass
class RunningServer:
    url: str
    gate: Gate
    server: WSGIServer

    def count(self, pattern: str) -> int:
        return sum(1 for r in self.gate.requests if re.search(pattern, r))

    def stop(self) -> None:
        self.gate.release.set()
        self.server.shutdown()
        self.server.server_close()


def serve(root: Path, gate: Gate) -> RunningServer:
    server = make_server("127.0.0.1", 0, gate(DapServer(str(root))), server_class=_ThreadingServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return RunningServer(f"http://127.0.0.1:{server.server_port}", gate, server)


def nasa_config(url: str, retries: int = 2) -> dict:
    """data.nasa pointing at the local server, the real URL layouts below the host."""
    return {
        "auth_host": "127.0.0.1",
        "retries": retries,
        "backoff_s": 0.01,
        "timeout_s": 30,
        "merra2": {
            "url": url + "/opendap/MERRA2/{collection}.{version}/{date:%Y}/{date:%m}/MERRA2_{stream}.{short_name}.{date:%Y%m%d}.nc4",
            "collection": "M2T1NXAER", "version": "5.12.4", "short_name": "tavg1_2d_aer_Nx",
            "variable": "DUEXTTAU", "steps_per_day": 24,
            "streams": [{"from": "1992-01-01", "stream": 200}, {"from": "2001-01-01", "stream": 300},
                        {"from": "2011-01-01", "stream": 400}],
        },
        "g5nr": {"url": url + "/dods/OSSE/G5NR/Ganymed/7km/0.0625_deg/{kind}/{collection}", "kind": "inst",
                 "collection": "inst30mn_2d_aer1_Nx", "variable": "DUEXTTAU", "steps_per_day": 48},
        "elevation": {"url": url + "/dods/OSSE/G5NR/Ganymed/7km/0.0625_deg/{kind}/{collection}", "kind": "const",
                      "collection": "const_2d_asm_Nx", "variable": "PHIS", "steps_per_day": 1},
    }
