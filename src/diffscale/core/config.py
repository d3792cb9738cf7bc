"""Configuration: schema validation with defaults, and the checks a schema cannot say.

The Snakefile calls :func:`validate_config` before any rule is defined, so a bad
config stops the run with a message that names the key, never halfway through.
"""

from __future__ import annotations

import copy
import datetime as dt
import glob
import os
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from diffscale.core import registry
from diffscale.core.grids import Box

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


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
    """The config schema, with ``evaluation.models``' enum taken from the model registry."""
    with open(path) as fh:
        schema = yaml.safe_load(fh)
    models = schema.get("properties", {}).get("evaluation", {}).get("properties", {}).get("models")
    if models is not None:
        models["items"]["enum"] = registry.configurable()
    return schema


# Keys of `baselines` that default (null) to the diffusion model's value: the same budget.
SHARED_WITH_DIFFUSION = ("channels", "blocks", "attention", "steps", "batch_size", "lr", "weight_decay", "ema_decay",
                         "grad_clip", "checkpoint_every", "seed")


def baseline_settings(baselines: dict, diffusion: dict) -> dict:
    """The baselines' section with every null key replaced by the diffusion section's value."""
    return {k: (diffusion[k] if v is None and k in SHARED_WITH_DIFFUSION else v) for k, v in baselines.items()}


def with_seed(section: dict, index: int) -> dict:
    """A model's (or sampling's) section for training seed ``index`` of ``evaluation.seeds``: its seed + index.

    Seed 0 is the section itself, so one seed reproduces a run made before seeds existed;
    the loop and the samplers hash the seed with the step or the date, so neighbouring
    seeds draw unrelated numbers.
    """
    if index < 0:
        raise ValueError(f"seed index must be >= 0, got {index}")
    return dict(section) if index == 0 else {**section, "seed": section["seed"] + index}


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
        lo, hi = box["lat"]
        if not lo < hi:
            raise ConfigError(f"config key regions.{name}.lat: [{lo}, {hi}] must be [south, north] with south < north")
        west, east = box["lon"]
        if west == east or east - west > 360:
            raise ConfigError(f"config key regions.{name}.lon: [{west}, {east}] must be [west, east] spanning at most "
                              "360 degrees (west > east crosses the antimeridian)")
    if data["source"] == "nasa":
        union = Box.union([Box.from_config(b) for b in config["regions"].values()]).padded(data.get("margin_deg", 0.0))
        if union.crosses_antimeridian:
            raise ConfigError(f"config key regions: with data.margin_deg they reach across the antimeridian (lon "
                              f"{list(union.lon)}); data.source nasa cannot subset across it: download the files and "
                              "use data.source local")
    seen: dict[int, str] = {}
    for name, months in config["seasons"].items():
        for m in months:
            if m in seen:
                raise ConfigError(f"config key seasons.{name}: month {m} is already in season {seen[m]}")
            seen[m] = name
    if data["step"] != "day" and data["source"] != "local":
        raise ConfigError(f"config key data.step: {data['step']!r} needs data.source local (the {data['source']} "
                          "source is daily)")
    seasons = config["seasons"]
    if data["step"] == "year" and (list(seasons) != ["ALL"] or sorted(seasons["ALL"]) != list(range(1, 13))):
        raise ConfigError(f"config key seasons: with data.step year the only valid season is ALL: "
                          f"[1, 2, ..., 12] (a year has no seasons), got {seasons}")
    if data["source"] == "local":
        missing = [f for f in ("coarse", "fine") if f not in data.get("local", {})]
        if missing:
            raise ConfigError(f"config key data.local.{missing[0]}: required when data.source is local (give path and variable)")
        for name, field in data["local"].items():
            if isinstance(field, dict) and not glob.glob(os.path.expanduser(field["path"])):
                raise ConfigError(f"config key data.local.{name}.path: no file matches {field['path']!r}")
    _check_apply(config.get("apply", {}), data["source"])


# Product names the apply entries would overwrite (the aggregates, results/downscaled/{region}.{period}.nc).
RESERVED_APPLY_NAMES = ("monthly", "annual")


def _check_apply(apply: dict, source: str) -> None:
    """Each apply entry: a free name, and the input its data.source reads (coarse files, or a NASA period)."""
    wanted = "period" if source == "nasa" else "coarse"
    for name, entry in apply.items():
        if name in RESERVED_APPLY_NAMES:
            raise ConfigError(f"config key apply.{name}: the name is taken by the product's aggregates "
                              f"({', '.join(RESERVED_APPLY_NAMES)}); choose another")
        if set(entry) != {wanted}:
            raise ConfigError(f"config key apply.{name}: give exactly '{wanted}' with data.source {source} "
                              f"(got {sorted(entry) or 'nothing'})")
        if wanted == "period":
            start, end = entry["period"]
            try:
                bad = pd.Timestamp(start) > pd.Timestamp(end)
            except ValueError as exc:
                raise ConfigError(f"config key apply.{name}.period: {start!r}..{end!r} is not a valid date range ({exc})") from None
            if bad:
                raise ConfigError(f"config key apply.{name}.period: start {start} is after end {end}")


def static_fields(config: dict) -> list[str]:
    """The static fields the models condition on besides latitude and longitude, in channel order.

    The synthetic twin and NASA have elevation; the user's files (data.source local) only where
    data.local.elevation gives a file.
    """
    data = config["data"]
    return ["elevation"] if data["source"] != "local" or data.get("local", {}).get("elevation") else []


def load_config(path: str | Path, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Read a YAML config file and validate it."""
    with open(path) as fh:
        raw = yaml.safe_load(fh) or {}
    try:
        return validate_config(raw, schema_path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _type_of(node: dict) -> str:
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in node:  # e.g. the word year or a number of days
        return " or ".join(_type_of(option) for option in node["oneOf"])
    if "enum" in node:
        return " \\| ".join(map(str, node["enum"]))
    kind = node.get("type", "")
    if isinstance(kind, list):  # e.g. [integer, "null"]: a value or null
        return " or ".join(_type_of({**node, "type": k}) for k in kind)
    if kind == "array" and "items" in node:
        return f"list of {_type_of(node['items'])}"
    return kind


KEYS_MARKER = "<!-- keys: generated from the schema by `make config-docs`; do not edit below -->"


def schema_markdown(schema: dict | None = None) -> str:
    """The key reference in config/README.md, generated from the schema so the two never drift."""
    schema = schema or load_schema()
    defs = schema.get("$defs", {})
    rows = []

    def walk(node: dict, prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            key = prefix + name
            ref = defs.get(sub.get("$ref", "").rsplit("/", 1)[-1], {})
            default = sub.get("default", "(required)" if name in node.get("required", []) else "")
            if isinstance(default, dict) and not default:
                default = ""
            desc = " ".join(str(sub.get("description", ref.get("description", ""))).split())
            rows.append(f"| `{key}` | {_type_of(sub)} | {json_default(default)} | {desc} |")
            walk(sub if "properties" in sub else ref, key + ".")
            extra = sub.get("additionalProperties")
            if isinstance(extra, dict) and ("properties" in extra or "items" in extra):
                placeholder = "<name>"
                rows.append(f"| `{key}.{placeholder}` | {_type_of(extra)} | | one entry per name |")
                walk(extra, f"{key}.{placeholder}.")

    walk(schema, "")
    header = "| key | type | default | description |\n| --- | --- | --- | --- |\n"
    return header + "\n".join(rows) + "\n"


def json_default(value: Any) -> str:
    if value == "":
        return ""
    text = value if isinstance(value, str) and value.startswith("(") else yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip()
    return f"`{text.removesuffix('...').strip()}`" if not text.startswith("(") else text


def main(argv: list[str] | None = None) -> int:
    """``python -m diffscale.core.config [--markdown | --update-readme README | CONFIG.yaml ...]``.

    Print the key table, rewrite it in config/README.md, or check config files.
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--markdown":
        print(schema_markdown(), end="")
        return 0
    if args and args[0] == "--update-readme":
        path = Path(args[1])
        text = path.read_text()
        head, sep, _ = text.partition(KEYS_MARKER)
        if not sep:
            print(f"{path}: marker {KEYS_MARKER!r} not found", file=sys.stderr)
            return 1
        path.write_text(head + KEYS_MARKER + "\n\n" + schema_markdown())
        return 0
    for path in args:
        try:
            load_config(path)
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{path}: valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
