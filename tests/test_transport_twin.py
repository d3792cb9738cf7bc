"""The transport twin: its equations, its coarse record, its ceiling, its parameters in config and twin.json."""

import json
import math
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from diffscale.core import io
from diffscale.core.config import load_schema
from diffscale.core.grids import Box, conservative_matrices
from diffscale.data.sources.synthetic import (
    RandomField,
    TransportParameters,
    TransportTwin,
    TwinParameters,
    make_twin,
    twin_grids,
    twin_parameters,
)
from diffscale.data.sources.synthetic.transport import advect, transport_step

BOX = Box((33.0, 34.0), (64.0, 65.25))
PERIOD = ("2000-01-01", "2000-02-29")


def blob(shape=(40, 50), centre=(20, 25), width=3.0) -> np.ndarray:
    y, x = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / (2 * width**2))


def centroid(field: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[: field.shape[0], : field.shape[1]]
    return np.array([(y * field).sum(), (x * field).sum()]) / field.sum()


def test_without_emission_and_wind_the_mass_decays_at_the_configured_rate():
    plume = blob()
    mass0 = plume.sum()
    for day in range(1, 8):
        plume = transport_step(plume, np.zeros_like(plume), 0.0, 0.0, decay_days=2.5)
        assert plume.sum() == pytest.approx(mass0 * math.exp(-day / 2.5), rel=1e-12)


def test_advection_moves_a_blob_by_the_wind_and_loses_what_leaves_the_grid():
    b = blob()
    moved = advect(b, 3.0, -4.0)  # 3 rows north, 4 columns west
    np.testing.assert_allclose(moved[23, 21], b[20, 25])
    np.testing.assert_allclose(centroid(moved), centroid(b) + [3.0, -4.0], atol=1e-9)
    # sub-pixel moves keep the mass inside the grid and move the centre by the fraction
    half = advect(b, 0.5, 1.25)
    assert half.sum() == pytest.approx(b.sum(), rel=1e-9)  # only the blob's far tail leaves
    np.testing.assert_allclose(centroid(half), centroid(b) + [0.5, 1.25], atol=1e-6)
    assert (half >= 0).all()
    # nothing flows in: a blob carried off the grid is gone
    assert advect(b, 0.0, 60.0).sum() == 0.0
    edge = advect(b, 0.0, 25.0)
    assert 0.3 * b.sum() < edge.sum() < 0.7 * b.sum()
    # emission is added after the day's transport and decay
    step = transport_step(b, b, 0.0, 2.0, decay_days=3.0)
    np.testing.assert_allclose(step, math.exp(-1 / 3.0) * advect(b, 0.0, 2.0) + b)


def test_the_plume_is_carried_by_the_twin_s_daily_wind():
    # one day's sources switched off after day 0: the next day's plume is day 0's, moved by the wind and decayed
    gen = TransportTwin([BOX], 0.5, TransportParameters(gust=RandomField(0.0, 0.1)))
    background = np.full(gen.fine_grid.shape, -6.0)  # a negligible background: oracle = log10(plume)
    gen.fine_day(0, background, 0.0)
    before = gen.plume.copy()
    gen.params = replace(gen.params, emission=0.0)
    gen.fine_day(1, background, 0.0)
    u, v = gen.wind()
    expected = math.exp(-1 / gen.params.decay_days) * advect(before, v / gen.px, u / gen.fine_grid.dlon)
    np.testing.assert_allclose(gen.plume, expected)
    assert not np.allclose(gen.plume, math.exp(-1 / gen.params.decay_days) * before)  # it did move


@pytest.fixture(scope="module")
def transport(tmp_path_factory):
    out = tmp_path_factory.mktemp("transport")
    return out, make_twin([BOX], 0.5, PERIOD, out, params=TransportParameters())


def test_coarse_is_the_area_mean_plus_the_stated_bias_and_noise(transport, tmp_path):
    out, scores = transport
    coarse = io.read_record(io.month_files(out / "coarse", *PERIOD), "DUEXTTAU").values
    fine = io.read_record(io.month_files(out / "fine", *PERIOD), "DUEXTTAU").values.astype(np.float64)
    cg, fg = twin_grids([BOX], 0.5)
    wy, wx = conservative_matrices(fg, cg)
    area_mean = np.einsum("yi,tij,xj->tyx", wy, fine, wx)
    d = np.log10(coarse) - np.log10(area_mean)
    p = TransportParameters()
    assert d.mean() == pytest.approx(p.coarse_bias, abs=0.01)
    assert d.std() == pytest.approx(p.coarse_noise, rel=0.1)
    assert scores.coarse_minus_fine_mean == pytest.approx(d.mean(), abs=1e-4)
    # without bias and noise, exactly the area mean (physical units)
    make_twin([BOX], 0.5, ("2000-01-01", "2000-01-05"), tmp_path,
              params=TransportParameters(coarse_bias=0.0, coarse_noise=0.0))
    coarse = io.read_record(io.month_files(tmp_path / "coarse", "2000-01-01", "2000-01-05"), "DUEXTTAU").values
    fine = io.read_record(io.month_files(tmp_path / "fine", "2000-01-01", "2000-01-05"), "DUEXTTAU").values
    np.testing.assert_allclose(coarse, np.einsum("yi,tij,xj->tyx", wy, fine.astype(np.float64), wx), rtol=2e-6)


def test_the_ceiling_lies_between_bicubic_and_the_oracle(transport):
    _, scores = transport
    assert scores.bicubic_r2 < scores.ceiling_r2 < scores.oracle_r2


def test_without_gustiness_the_prior_is_the_oracle():
    # The gustiness is the only part of the plume the large-scale state does not fix.
    gen = TransportTwin([BOX], 0.5, TransportParameters(gust=RandomField(0.0, 0.1)))
    for month in gen.months("2000-01-01", "2000-01-10"):
        np.testing.assert_allclose(month.prior, month.oracle, rtol=1e-12)
    gusty = TransportTwin([BOX], 0.5, TransportParameters())
    month = next(gusty.months("2000-01-01", "2000-01-10"))
    assert np.abs(month.prior - month.oracle).max() > 0.05


def test_emission_follows_the_static_sources_and_the_wind():
    gen = TransportTwin([BOX], 0.5)
    assert gen.source.mean() == pytest.approx(1.0) and (gen.source > 0).all()
    # sources lie in the low basins
    assert np.corrcoef(gen.source.ravel(), gen.elevation.ravel())[0, 1] < -0.3
    # windy days load the domain: the day's mean plume grows with the day's activity
    activity, load = [], []
    for day in range(60):
        gen.fine_day(day, np.full(gen.fine_grid.shape, -1.25), 0.0)
        u, v = gen.wind()
        activity.append(math.hypot(u, v) ** 3)
        load.append(gen.mean_plume.mean())
    assert np.corrcoef(activity, load)[0, 1] > 0.5


def test_twin_json_records_the_kind_and_every_parameter_and_regenerates_it(transport):
    out, _ = transport
    record = json.loads((out / "twin.json").read_text())["parameters"]
    assert record["kind"] == "transport"
    assert record["decay_days"] == TransportParameters().decay_days and record["gust"] == {"std": 0.5, "length": 0.1, "rho": 0.0}
    assert twin_parameters(record) == TransportParameters()
    with io.open_dataset(out / "elevation.nc") as ds:
        assert "(transport)" in ds.attrs["source"]


def test_config_selects_the_kind_and_its_parameters():
    config = {"seed": 3, "coarse_noise": 0.0, "kind": "transport", "transport": {"decay_days": 5.0}}
    p = twin_parameters(config)
    assert isinstance(p, TransportParameters) and p.seed == 3 and p.coarse_noise == 0.0 and p.decay_days == 5.0
    # the ar1 twin ignores the transport section (the schema fills it in for every config)
    assert twin_parameters({"seed": 3, "transport": {"decay_days": 5.0}}) == TwinParameters(seed=3)
    with pytest.raises(ValueError, match="data.synthetic.kind: 'plume' is not one of ar1, transport"):
        twin_parameters({"kind": "plume"})
    with pytest.raises(ValueError, match="decay_days: 0.0 is not positive"):
        twin_parameters({"kind": "transport", "transport": {"decay_days": 0.0}})


def test_schema_defaults_are_the_generator_s_defaults():
    synthetic = load_schema()["properties"]["data"]["properties"]["synthetic"]["properties"]
    assert synthetic["kind"]["default"] == "ar1"
    defaults = {k: v["default"] for k, v in synthetic["transport"]["properties"].items()}
    own = {k: v for k, v in asdict(TransportParameters()).items() if k not in asdict(TwinParameters())}
    own["gust"] = {k: v for k, v in own["gust"].items() if k != "rho"}
    assert defaults == own


def test_the_transport_overlay_changes_only_the_kind_and_where_results_go():
    from snakemake.utils import update_config

    from diffscale.core.config import validate_config

    root = Path(__file__).resolve().parents[1] / "config"
    base = yaml.safe_load((root / "config.yaml").read_text())
    merged = yaml.safe_load((root / "config.yaml").read_text())
    update_config(merged, yaml.safe_load((root / "transport.yaml").read_text()))  # what --configfile a b does
    cfg, plain = validate_config(merged), validate_config(base)
    assert cfg["data"]["synthetic"]["kind"] == "transport" and plain["data"]["synthetic"]["kind"] == "ar1"
    assert cfg["results_dir"] == "results/transport" and cfg["data"]["raw_dir"].startswith("results/transport/")
    for config in (cfg, plain):
        config["data"]["synthetic"].pop("kind"), config.pop("results_dir"), config["data"].pop("raw_dir")
    assert cfg == plain


def test_the_bottleneck_experiment_changes_only_the_features_and_keeps_the_transport_data():
    """config/transport_bottleneck.yaml after transport.yaml: the same twin files, its own results, bottleneck features."""
    from snakemake.utils import update_config

    from diffscale.core.config import validate_config

    root = Path(__file__).resolve().parents[1] / "config"
    transport = yaml.safe_load((root / "config.yaml").read_text())
    update_config(transport, yaml.safe_load((root / "transport.yaml").read_text()))
    merged = yaml.safe_load(yaml.safe_dump(transport))
    update_config(merged, yaml.safe_load((root / "transport_bottleneck.yaml").read_text()))
    cfg, plain = validate_config(merged), validate_config(transport)
    assert cfg["encoder"]["features"] == "bottleneck" and plain["encoder"]["features"] == "levels"
    assert cfg["data"] == plain["data"]  # the transport run's raw files, regenerated by neither
    assert cfg["results_dir"] == "results/transport_bottleneck"
    assert "diffusion_no_transfer" in cfg["evaluation"]["models"]
    for config in (cfg, plain):
        config["encoder"].pop("features"), config.pop("results_dir"), config["evaluation"].pop("models")
    assert cfg == plain
