"""Configuration: schema validation with defaults, and the checks a schema cannot say.

The Snakefile calls :func:`validate_config` before any rule is defined, so a bad
config stops the run with a message that names the key, never halfway through.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration breaks the schema or is inconsistent; the message names the key."""


def _iso_dates(obj: Any) -> Any:
    """YAML reads unquoted 2000-01-01 as a date; the schema speaks ISO strings."""
    if isinstance(obj, dict):
        return {k: _iso_dates(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_iso_dates(v) for v in obj]
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.strftime("%Y-%m-%d")
    return obj


def _with_defaults(validator_class):
    """A validator that fills in schema defaults while it walks the instance."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Return a validated copy of ``config`` with every default filled in.

    Raises :class:`ConfigError` naming the first offending key, e.g.
    ``config key split.buffer_days: -3 is less than the minimum of 0``.
    """
    config = _iso_dates(copy.deepcopy(dict(config)))
    schema = load_schema(schema_path)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - allowed)
            path = path + extra[:1]
            raise ConfigError(f"config key {_key(path)}: unknown key (allowed here: {', '.join(sorted(allowed))})")
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            raise ConfigError(f"config key {_key(path + [missing])}: required but missing")
        raise ConfigError(f"config key {_key(path)}: {err.message}")
    _check_consistency(config)
    return config


def _check_consistency(config: dict) -> None:
    data = config["data"]
    for key in ("coarse_period", "fine_period"):
        start, end = data[key]
        try:
            s, e = pd.Timestamp(start), pd.Timestamp(end)
        except ValueError as exc:
            raise ConfigError(f"config key data.{key}: {start!r}..{end!r} is not a valid date range ({exc})") from None
        if s > e:
            raise ConfigError(f"config key data.{key}: start {start} is after end {end}")
    (cs, ce), (fs, fe) = data["coarse_period"], data["fine_period"]
    if pd.Timestamp(fs) < pd.Timestamp(cs) or pd.Timestamp(fe) > pd.Timestamp(ce):
        raise ConfigError(f"config key data.fine_period: {fs}..{fe} must lie inside data.coarse_period {cs}..{ce}")
    for name, box in config["regions"].items():
        for axis in ("lat", "lon"):
            lo, hi = box[axis]
            if not lo < hi:
                raise ConfigError(f"config key regions.{name}.{axis}: [{lo}, {hi}] must be [min, max] with min < max")
    seen: dict[int, str] = {}
    for name, months in config["seasons"].items():
        for m in months:
            if m in seen:
                raise ConfigError(f"config key seasons.{name}: month {m} is already in season {seen[m]}")
            seen[m] = name
    if data["source"] == "local":
        missing = [f for f in ("coarse", "fine", "elevation") if f not in data.get("local", {})]
        if missing:
            raise ConfigError(f"config key data.local.{missing[0]}: required when data.source is local (give path and variable)")


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Read a YAML config file and validate it."""
    with open(path) as fh:
        raw = yaml.safe_load(fh) or {}
    try:
        return validate_config(raw, schema_path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
