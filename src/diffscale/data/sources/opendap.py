"""An OPeNDAP (DAP2) client for Earthdata-protected servers: login, HTTP with retries, DAP2 parsing.

HTTP is plain ``requests`` so that authentication, retries and error messages are
ours; pydap only parses the DAP2 answers (DDS, DAS, XDR data). A :class:`RemoteVariable`
reads the DDS (dimensions), the DAS (units, fill values), the coordinates, and then
index boxes of the data (DAP2 constraint ``VAR[t0:1:t1][i0:1:i1][j0:1:j1]``).

Earthdata Login: a data host redirects to the login host (``auth_host``), which gets
the credentials and redirects back with a session cookie. Only the login host ever
sees the password, and no message, log line or exception text contains it.
"""

from __future__ import annotations

import io as _io
import logging
import netrc
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cftime
import numpy as np
import pandas as pd
import requests
from pydap.handlers.dap import unpack_dap2_data
from pydap.model import BaseType, StructureType
from pydap.parsers.das import parse_das
from pydap.parsers.dds import dds_to_dataset


log = logging.getLogger("diffscale.opendap")


TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
HOW_TO_LOGIN = (
    "put a line 'machine {host} login YOUR_USER password YOUR_PASSWORD' in ~/.netrc "
    "(chmod 600 ~/.netrc), or set EARTHDATA_USERNAME and EARTHDATA_PASSWORD; and approve "
    "the 'NASA GESDISC DATA ARCHIVE' application in your Earthdata profile "
    "(https://urs.earthdata.nasa.gov, Applications > Authorized Apps). See README.md, "
    "'Earthdata credentials'."
)


class EarthdataAuthError(RuntimeError):
    """No Earthdata login was found, or the server rejected it."""


class DownloadError(RuntimeError):
    """A request failed for good (after retries, or a permanent HTTP/DAP error)."""

    def __init__(self, url: str, status: int | str, detail: str = ""):
        self.url = url
        self.status = status
        super().__init__(f"{url}: {status}" + (f" ({detail})" if detail else ""))


# ---------------------------------------------------------------------------- login


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)  # keeps the secret out of reprs and tracebacks


def earthdata_credentials(host: str = "urs.earthdata.nasa.gov",
                          environ: Mapping[str, str] | None = None) -> Credentials:
    """The Earthdata login: EARTHDATA_USERNAME/PASSWORD, else ~/.netrc (or $NETRC)."""
    env = os.environ if environ is None else environ
    user, password = env.get("EARTHDATA_USERNAME"), env.get("EARTHDATA_PASSWORD")
    if user and password:
        return Credentials(user, password)
    path = Path(env.get("NETRC") or Path.home() / ".netrc")
    entry = None
    if path.exists():
        try:
            entry = netrc.netrc(path).authenticators(host)
        except (netrc.NetrcParseError, OSError) as exc:
            # The parse error may quote a token of the file (a password): say where, not what.
            raise EarthdataAuthError(f"cannot read {path} (malformed near line {getattr(exc, 'lineno', '?')}, or "
                                     "readable by others): "
                                     + HOW_TO_LOGIN.format(host=host)) from None
    if not entry or not entry[0] or not entry[2]:
        raise EarthdataAuthError(f"no Earthdata login for machine {host} (looked at EARTHDATA_USERNAME/"
                                 f"EARTHDATA_PASSWORD and {path}): " + HOW_TO_LOGIN.format(host=host))
    return Credentials(entry[0], entry[2])


class EarthdataSession(requests.Session):
    """Sends the login to the login host only, including when a data host redirects there.

    The data hosts get the session cookie the login host's redirect chain sets, never
    the password (NASA's published recipe sends it to the data host too; no need).
    """

    def __init__(self, credentials: Credentials, auth_host: str):
        super().__init__()
        self._login = (credentials.username, credentials.password)
        self.auth_host = auth_host

    def request(self, method, url, *args, **kwargs):
        if urlsplit(url).hostname == self.auth_host:
            kwargs["auth"] = self._login
        return super().request(method, url, *args, **kwargs)

    def rebuild_auth(self, prepared_request, response):
        prepared_request.headers.pop("Authorization", None)
        if urlsplit(prepared_request.url).hostname == self.auth_host:
            prepared_request.prepare_auth(self._login)


def public_url(url: str) -> str:
    """``url`` without any user:password@ part, safe for messages."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


# ---------------------------------------------------------------------------- HTTP


@dataclass
class Fetcher:
    """GET with exponential backoff on transient errors; permanent errors name the URL."""

    session: requests.Session
    retries: int = 5
    backoff_s: float = 2.0
    timeout_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    requests_made: int = 0
    bytes_received: int = 0

    def get(self, url: str, query: str = "") -> bytes:
        full = f"{url}?{query}" if query else url
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                self.requests_made += 1
                response = self.session.get(full, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                if last:
                    raise DownloadError(public_url(full), "no answer", type(exc).__name__) from None
                self._wait(attempt, full, type(exc).__name__)
                continue
            status = response.status_code
            auth_host = getattr(self.session, "auth_host", None)
            if auth_host and urlsplit(response.url).hostname == auth_host != urlsplit(full).hostname:
                # Still at the login host after the redirects: the login page, not data.
                raise EarthdataAuthError(f"{public_url(full)}: ended at the login page (HTTP {status}); is the "
                                         "application approved for your account? " + HOW_TO_LOGIN.format(host=auth_host))
            if status in (401, 403):
                raise EarthdataAuthError(f"{public_url(full)}: HTTP {status} {response.reason}: the server rejected "
                                         f"the Earthdata login; " + HOW_TO_LOGIN.format(host=auth_host or "urs.earthdata.nasa.gov"))
            if status in TRANSIENT_STATUS and not last:
                self._wait(attempt, full, f"HTTP {status}")
                continue
            if status != 200:
                raise DownloadError(public_url(full), f"HTTP {status} {response.reason}", _dap_error(response.content))
            if response.content.startswith(b"Error {"):
                raise DownloadError(public_url(full), "DAP error", _dap_error(response.content))
            self.bytes_received += len(response.content)
            return response.content
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, url: str, why: str) -> None:
        delay = backoff_delay(attempt, self.backoff_s)
        log.warning("%s: %s, retry %d/%d in %.1f s", public_url(url), why, attempt + 1, self.retries, delay)
        self.sleep(delay)


def backoff_delay(attempt: int, base_s: float) -> float:
    """base, 2 base, 4 base, ... capped at 5 minutes."""
    return min(base_s * 2.0**attempt, 300.0)


def _dap_error(body: bytes) -> str:
    """The message of a DAP2 error body, short; empty when the body is not one."""
    text = body[:400].decode("utf-8", "replace")
    return " ".join(text.split())[:200] if text.lstrip().startswith("Error") else ""


# ---------------------------------------------------------------------------- DAP2


def parse_dods(payload: bytes) -> dict[str, np.ndarray]:
    """Arrays of a DAP2 data answer by name; Grids (Hyrax, GDS) give their array and maps."""
    dds, sep, xdr = payload.partition(b"\nData:\n")
    if not sep:
        raise ValueError("answer is not a DAP2 data response")
    template = dds_to_dataset(dds.decode("ascii", "replace"))
    values = unpack_dap2_data(_io.BytesIO(xdr), template)
    out: dict[str, np.ndarray] = {}

    def walk(node, value) -> None:
        if isinstance(node, StructureType):
            for child, v in zip(node.children(), value):
                walk(child, v)
        else:
            out.setdefault(node.name, np.asarray(value))

    for child, value in zip(template.children(), values):
        walk(child, value)
    return out


def hyperslab(ranges: list[tuple[int, int]]) -> str:
    """DAP2 index constraint, inclusive ends: [(0, 23), (5, 9)] -> '[0:1:23][5:1:9]'."""
    return "".join(f"[{a}:1:{b}]" for a, b in ranges)


@dataclass
class RemoteVariable:
    """One variable of one OPeNDAP dataset: its name on the server, dims and attributes."""

    url: str
    name: str
    dims: list[str]
    shape: tuple[int, ...]
    attrs: dict
    coord_attrs: dict[str, dict]

    @classmethod
    def open(cls, fetcher: Fetcher, url: str, variable: str) -> RemoteVariable:
        dds = fetcher.get(url + ".dds").decode("ascii", "replace")
        return cls.describe(url, dds, lambda: fetcher.get(url + ".das").decode("utf-8", "replace"), variable)

    @classmethod
    def describe(cls, url: str, dds_text: str, das_text: Callable[[], str], variable: str) -> RemoteVariable:
        """From the DDS (an Array, or a Grid as Hyrax and GDS send) and the DAS (read only if needed)."""
        dds = dds_to_dataset(dds_text)
        names = {k.lower(): k for k in dds.keys()}  # GDS lower-cases names: match either case
        if variable.lower() not in names:
            raise DownloadError(url, "variable missing", f"'{variable}' not in the dataset (has {', '.join(dds.keys())})")
        name = names[variable.lower()]
        node = dds[name]
        array = node if isinstance(node, BaseType) else node.array
        das = parse_das(das_text())
        return cls(url, name, list(array.dims), tuple(array.shape), das.get(name, {}),
                   {d: das.get(d, {}) for d in array.dims})

    def coordinates(self, fetcher: Fetcher) -> dict[str, np.ndarray]:
        return parse_dods(fetcher.get(self.url + ".dods", ",".join(self.dims)))

    def read(self, fetcher: Fetcher, ranges: list[tuple[int, int]]) -> np.ndarray:
        """The index box, inclusive ends; fill values become NaN, packing is undone."""
        got = parse_dods(fetcher.get(self.url + ".dods", self.name + hyperslab(ranges)))
        if self.name not in got:
            raise DownloadError(self.url, "empty answer", f"the server returned no '{self.name}'")
        data = got[self.name].astype(np.float64)
        expected = tuple(b - a + 1 for a, b in ranges)
        if data.shape != expected:
            raise DownloadError(self.url, "wrong shape", f"got {data.shape} for the constraint, expected {expected}")
        for key in ("_FillValue", "missing_value"):
            if key in self.attrs:
                fill = np.atleast_1d(np.asarray(self.attrs[key], dtype=np.float64))
                data[np.isin(data, fill) | np.isclose(data, fill[0], rtol=1e-6)] = np.nan
        return data * float(self.attrs.get("scale_factor", 1.0)) + float(self.attrs.get("add_offset", 0.0))


def decode_times(values: np.ndarray, attrs: dict) -> pd.DatetimeIndex:
    """CF time values -> timestamps, rounded to the second (GDS stores days as floats)."""
    if "units" not in attrs:
        raise ValueError("time coordinate has no units attribute")
    # cftime objects first: GDS counts 'days since 1-1-1', which python datetimes refuse
    # as a reference in the mixed Julian/Gregorian calendar; the dates themselves are modern.
    dates = cftime.num2date(np.asarray(values, dtype=np.float64), attrs["units"],
                            calendar=attrs.get("calendar", "standard"))
    return pd.DatetimeIndex([pd.Timestamp(d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond)
                             for d in np.atleast_1d(dates)]).round("s")


def index_range(coord: np.ndarray, lo: float, hi: float) -> tuple[int, int]:
    """First and last index of the coordinate values within [lo, hi] (either direction)."""
    inside = np.flatnonzero((coord >= lo - 1e-9) & (coord <= hi + 1e-9))
    if inside.size < 2:
        raise ValueError(f"fewer than 2 grid values within [{lo}, {hi}] (the data span {coord.min()}..{coord.max()})")
    return int(inside[0]), int(inside[-1])


def day_steps(times: pd.DatetimeIndex, day: pd.Timestamp, steps_per_day: int) -> tuple[int, int]:
    """Index range of the time steps that fall on ``day``; all of them must be there."""
    idx = np.flatnonzero(times.normalize() == day)
    if idx.size != steps_per_day or idx[-1] - idx[0] + 1 != idx.size:
        raise ValueError(f"{day.date()}: found {idx.size} time steps, expected {steps_per_day} consecutive ones")
    return int(idx[0]), int(idx[-1])


def daily_mean(steps: np.ndarray) -> np.ndarray:
    """(steps, lat, lon) -> (lat, lon); a cell missing at every step stays missing."""
    with np.errstate(invalid="ignore"):
        count = np.isfinite(steps).sum(axis=0)
        total = np.nansum(steps, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
