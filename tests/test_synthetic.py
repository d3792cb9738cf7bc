import json

import numpy as np
import pytest

from diffscale.core import io
from diffscale.core.grids import Box, conservative_matrices, merra2_grid
from diffscale.data.sources.synthetic import TwinParameters, bicubic, make_twin, twin_grids

DEMO_BOXES = [Box((33.0, 35.0), (64.0, 66.5)), Box((33.0, 35.0), (66.5, 69.0))]


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    out = tmp_path_factory.mktemp("twin")
    scores = make_twin(DEMO_BOXES, 1.0, ("2000-01-01", "2000-12-31"), out)
    return out, scores


def _load(out, field, months=((2000, 1),)):
    return io.read_record([io.month_file(out / field, y, m) for y, m in months], "DUEXTTAU")


def test_grids_are_the_merra2_and_g5nr_lattices(twin):
    out, _ = twin
    coarse, fine = _load(out, "coarse"), _load(out, "fine")
    np.testing.assert_array_equal(coarse.lat.values, merra2_grid(Box((32.0, 36.0), (63.0, 70.0))).lat)
    j = (coarse.lon.values + 180.0) / 0.625
    np.testing.assert_allclose(j, np.round(j), atol=1e-9)
    i = (fine.lat.values + 90.0) / 0.0625
    np.testing.assert_allclose(i, np.round(i), atol=1e-9)
    np.testing.assert_allclose(np.diff(fine.lon.values), 0.0625)
    # fine cells cover the coarse cells exactly (edges of MERRA-2 cells are G5NR centres)
    assert fine.lat.values[0] == coarse.lat.values[0] - 0.25 and fine.lon.values[-1] == coarse.lon.values[-1] + 0.3125


def test_files_carry_cf_metadata(twin):
    out, _ = twin
    fine = _load(out, "fine")
    assert fine.attrs["units"] == "1" and "Dust" in fine.attrs["long_name"]
    assert fine.sizes["time"] == 31 and str(fine.time.values[0])[:10] == "2000-01-01"
    assert float(fine.min()) > 0  # a positive optical depth
    elev = io.read_field(out / "elevation.nc", "elevation", dims=("lat", "lon"))
    assert elev.attrs["units"] == "m" and elev.shape == fine.shape[1:] and float(elev.min()) >= 0


def test_coarse_is_the_area_mean_of_fine_up_to_the_stated_bias_and_noise(twin):
    out, scores = twin
    months = [(2000, m) for m in range(1, 13)]
    coarse, fine = _load(out, "coarse", months), _load(out, "fine", months)
    cg, fg = twin_grids(DEMO_BOXES, 1.0)
    wy, wx = conservative_matrices(fg, cg)
    area_mean = np.einsum("yi,tij,xj->tyx", wy, fine.values.astype(np.float64), wx)
    d = np.log10(coarse.values) - np.log10(area_mean)
    p = TwinParameters()
    assert d.mean() == pytest.approx(p.coarse_bias, abs=0.003)
    assert d.std() == pytest.approx(p.coarse_noise, rel=0.05)
    # the residual is noise, not structure: uncorrelated with the field itself
    assert abs(np.corrcoef(d.ravel(), np.log10(area_mean).ravel())[0, 1]) < 0.05
    assert scores.coarse_minus_fine_mean == pytest.approx(d.mean(), abs=1e-4)


def test_without_bias_and_noise_coarse_equals_the_area_mean(tmp_path):
    make_twin(DEMO_BOXES[:1], 0.5, ("2000-01-01", "2000-01-05"), tmp_path,
              params=TwinParameters(coarse_bias=0.0, coarse_noise=0.0))
    coarse, fine = _load(tmp_path, "coarse"), _load(tmp_path, "fine")
    cg, fg = twin_grids(DEMO_BOXES[:1], 0.5)
    wy, wx = conservative_matrices(fg, cg)
    area_mean = np.einsum("yi,tij,xj->tyx", wy, fine.values.astype(np.float64), wx)
    np.testing.assert_allclose(coarse.values, area_mean, rtol=2e-6)


def test_reference_r2_brackets_the_problem_and_matches_the_files(twin):
    out, scores = twin
    assert 0.5 <= scores.bicubic_r2 <= 0.75
    assert scores.oracle_r2 >= 0.9
    # the ceiling knows the large scale exactly and the static pattern, not the anomaly
    assert scores.bicubic_r2 < scores.ceiling_r2 < scores.oracle_r2 - 0.1
    assert 0.6 <= scores.anomaly_lag1_correlation <= 0.85  # AR(1) rho = 0.8, lowered by advection
    written = json.loads((out / "twin.json").read_text())["scores"]
    assert written["bicubic_r2"] == pytest.approx(scores.bicubic_r2)
    elev_attrs = io.open_dataset(out / "elevation.nc").attrs
    assert elev_attrs["reference_oracle_r2"] == pytest.approx(scores.oracle_r2)
    assert elev_attrs["reference_ceiling_r2"] == pytest.approx(scores.ceiling_r2)
    # recompute bicubic R2 from the files alone
    months = [(2000, m) for m in range(1, 13)]
    coarse, fine = _load(out, "coarse", months), _load(out, "fine", months)
    cg, fg = twin_grids(DEMO_BOXES, 1.0)
    pred = bicubic(np.log10(coarse.values.astype(np.float64)), cg, fg)
    truth = np.log10(fine.values.astype(np.float64))
    inside = ((fg.lat >= cg.lat[0]) & (fg.lat <= cg.lat[-1]))[:, None] & ((fg.lon >= cg.lon[0]) & (fg.lon <= cg.lon[-1]))[None, :]
    t, p = truth[:, inside], pred[:, inside]
    r2 = 1 - np.square(t - p).sum() / np.square(t - t.mean()).sum()
    assert r2 == pytest.approx(scores.bicubic_r2, abs=1e-6)


def test_same_seed_same_bytes_other_seed_other_data(tmp_path, monkeypatch):
    # the files' creation date and history are this time, not the clock's
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")
    period = ("2000-01-25", "2000-02-03")
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        make_twin(DEMO_BOXES[:1], 0.5, period, tmp_path / name, params=TwinParameters(seed=seed))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 6  # 2 months x 2 fields + elevation + twin.json
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a/fine/2000-01.nc").read_bytes() != (tmp_path / "c/fine/2000-01.nc").read_bytes()


def test_ar1_records_are_those_the_generator_wrote_before_it_had_kinds(tmp_path):
    """The default twin (kind ar1) writes the values it wrote before the transport kind existed.

    The figures were computed from the files of the earlier generator (same boxes, margin,
    period, default parameters); float32 precision, so any change of an equation or of the
    order of the random draws shows, while a last-bit difference between CPUs does not.
    """
    make_twin([Box((33.0, 34.0), (64.0, 65.25))], 0.5, ("2000-01-01", "2000-02-29"), tmp_path)
    expected = {  # sum and sum of squares of log10, then three values
        "coarse": (-1736.4719265356955, 2566.002159948458, 0.04617834463715553, 0.05274388939142227, 0.05688796192407608),
        "fine": (-155505.99592860142, 248589.5704512272, 0.06507447361946106, 0.023917406797409058, 0.09450171142816544),
    }
    for field, (total, squares, first, last, middle) in expected.items():
        da = io.read_record(io.month_files(tmp_path / field, "2000-01-01", "2000-02-29"), "DUEXTTAU").values
        values = da.astype(np.float64)
        assert np.log10(values).sum() == pytest.approx(total, rel=1e-7)
        assert np.square(np.log10(values)).sum() == pytest.approx(squares, rel=1e-7)
        assert [values[0, 0, 0], values[-1, -1, -1], values[37, 2, 3]] == pytest.approx([first, last, middle], rel=1e-6)
    elevation = io.read_field(tmp_path / "elevation.nc", "elevation", dims=("lat", "lon")).values.astype(np.float64)
    assert elevation.sum() == pytest.approx(4189193.7592163086, rel=1e-7)
    assert elevation[3, 4] == pytest.approx(725.775390625, rel=1e-6)
    assert json.loads((tmp_path / "twin.json").read_text())["parameters"]["kind"] == "ar1"
