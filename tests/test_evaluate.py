"""Metrics against hand-computed values and against the libraries they wrap."""

import json
import logging

import numpy as np
import pandas as pd
import properscoring
import pytest
from split_fixture import write_split

from diffscale.core import io, metrics, transform
from diffscale.core.days import DaySplit
from diffscale.core.grids import Box, g5nr_grid, merra2_grid
from diffscale.core.samples import member_dataset
from diffscale.data.sources.synthetic import make_twin
from diffscale.evaluation import scores
from diffscale.evaluation.bicubic import bicubic_record


def test_point_scores_on_a_hand_computed_case():
    truth = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2)
    pred = np.array([1.0, 2.0, 3.0, 6.0]).reshape(1, 2, 2)
    # SSE = 4, SST = 5 (mean 2.5) -> r2 = 0.2; rmse = sqrt(4/4) = 1; mae = 2/4.
    assert metrics.r2(truth, pred) == pytest.approx(0.2)
    assert metrics.rmse(truth, pred) == pytest.approx(1.0)
    assert metrics.mae(truth, pred) == pytest.approx(0.5)
    r = np.corrcoef([1, 2, 3, 4], [1, 2, 3, 6])[0, 1]
    assert metrics.r2_pearson(truth, pred) == pytest.approx(r**2)
    # KGE: alpha = std(pred)/std(truth), beta = 3/2.5.
    alpha = np.std([1, 2, 3, 6]) / np.std([1, 2, 3, 4])
    assert metrics.kge(truth, pred) == pytest.approx(1 - np.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + 0.2**2))


def test_r2_is_not_r2_pearson_for_a_biased_prediction():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(5, 4, 4))
    pred = truth + 1.0
    assert metrics.r2_pearson(truth, pred) == pytest.approx(1.0)
    assert metrics.r2(truth, pred) < 0.5


def test_nse_is_per_pixel_temporal():
    # Pixel A: series [0, 2] predicted [0, 2] (NSE 1); pixel B: series [1, 3] predicted [2, 2] (NSE 0).
    truth = np.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 1, 2)
    pred = np.array([[0.0, 2.0], [2.0, 2.0]]).reshape(2, 1, 2)
    assert metrics.nse(truth, pred) == pytest.approx(0.5)


def test_nan_pixels_are_left_out():
    truth = np.array([1.0, 2.0, np.nan, 4.0]).reshape(1, 2, 2)
    pred = np.array([1.0, 3.0, 5.0, np.nan]).reshape(1, 2, 2)
    assert metrics.rmse(truth, pred) == pytest.approx(np.sqrt(0.5))
    assert metrics.mae(truth, pred) == pytest.approx(0.5)


def test_crps_hand_computed_and_against_properscoring_and_the_pairwise_formula():
    # Two members 0 and 2, truth 1: mean |x - y| = 1, sum_ij |xi - xj| = 4 -> fair 1 - 4/4 = 0, as issued 1 - 4/8.
    assert metrics.crps_points(np.array(1.0), np.array([0.0, 2.0])) == pytest.approx(0.0)
    assert metrics.crps_points(np.array(1.0), np.array([0.0, 2.0]), fair=False) == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    y = rng.normal(size=(4, 50))
    x = rng.normal(size=(7, 4, 50))
    m = x.shape[0]
    np.testing.assert_allclose(metrics.crps_points(y, x, fair=False), properscoring.crps_ensemble(y, np.moveaxis(x, 0, -1)))
    # The fair CRPS straight from its definition (Ferro 2014), every pair of members.
    pairs = np.abs(x[:, None] - x[None, :]).sum(axis=(0, 1))
    direct = np.abs(x - y).mean(axis=0) - pairs / (2 * m * (m - 1))
    np.testing.assert_allclose(metrics.crps_points(y, x), direct)
    assert metrics.crps(y, x) == pytest.approx(direct.mean())


def test_fair_crps_does_not_depend_on_the_number_of_members_the_issued_one_does():
    # Truth and members exchangeable, N(0, 1): the CRPS of the distribution is 1/sqrt(pi) = 0.564.
    rng = np.random.default_rng(4)
    y = rng.normal(size=200_000)
    for m in (2, 5, 40):
        x = rng.normal(size=(m, y.size))
        assert metrics.crps(y, x) == pytest.approx(1 / np.sqrt(np.pi), rel=0.01)
        # as issued: the finite ensemble's own distribution, worse by 1/(2m) of the mean pair distance 2/sqrt(pi)
        assert metrics.crps(y, x, fair=False) == pytest.approx((1 + 1 / m) / np.sqrt(np.pi), rel=0.01)


def test_member_curve_of_a_calibrated_ensemble():
    # Truth and 12 members exchangeable around a shared centre: the fair CRPS is flat in m from 2 members
    # (one member is scored as a point, by its MAE), the CRPS as issued falls towards it, and the m-member
    # mean's RMSE is sqrt(1 + 1/m) x the noise.
    rng = np.random.default_rng(5)
    centre = rng.normal(size=(20, 40, 50))
    truth = centre + 0.1 * rng.normal(size=centre.shape)
    members = centre + 0.1 * rng.normal(size=(12, *centre.shape))
    curve = metrics.member_curve(truth, members)
    assert list(curve["members"]) == list(range(1, 13)) and list(curve["groups"][[0, 3, 5, 11]]) == [12, 3, 2, 1]
    np.testing.assert_allclose(curve["crps_fair"][1:], curve["crps_fair"][1], rtol=0.01)
    assert np.all(np.diff(curve["crps"]) < 0) and curve["crps"][0] == pytest.approx(curve["crps_fair"][0])
    assert curve["crps_fair"][0] == pytest.approx(np.mean([metrics.mae(truth, m) for m in members]))
    np.testing.assert_allclose(curve["rmse_mean"], 0.1 * np.sqrt(1 + 1 / curve["members"]), rtol=0.01)
    assert curve["crps"][3] == pytest.approx(np.mean([metrics.crps(truth, members[g * 4:(g + 1) * 4], fair=False)
                                                      for g in range(3)]))


def test_crps_of_one_member_is_the_mae():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(3, 5, 6))
    x = rng.normal(size=(1, 3, 5, 6))
    assert metrics.crps(y, x) == pytest.approx(metrics.mae(y, x[0]))
    assert metrics.crps(y, x, fair=False) == pytest.approx(metrics.mae(y, x[0]))


def test_skill_score_is_zero_for_the_reference_and_one_for_a_perfect_prediction():
    assert metrics.skill_score(0.5, 0.5) == 0.0 and metrics.skill_score(0.0, 0.5) == 1.0
    assert metrics.skill_score(1.0, 0.5) == -1.0 and np.isnan(metrics.skill_score(1.0, np.nan))


def test_spread_skill_is_one_for_a_perfect_small_ensemble():
    # Truth and members drawn from the same distribution: the corrected ratio is 1 for any M.
    rng = np.random.default_rng(3)
    centre = rng.normal(size=200_000)
    for m in (2, 5):
        truth = centre + rng.normal(size=centre.size)
        members = centre + rng.normal(size=(m, centre.size))
        assert metrics.spread_skill(truth, members) == pytest.approx(1.0, abs=0.02)
    # An over-confident ensemble (half the spread) scores well below 1.
    members = centre + 0.5 * rng.normal(size=(4, centre.size))
    assert metrics.spread_skill(centre + rng.normal(size=centre.size), members) < 0.7
    assert np.isnan(metrics.spread_skill(centre, centre[None]))


def test_ssim_uses_data_range_and_is_one_for_identical_fields():
    rng = np.random.default_rng(4)
    truth = rng.normal(size=(3, 16, 16))
    assert metrics.ssim(truth, truth) == pytest.approx(1.0)
    noisy = truth + 0.5 * rng.normal(size=truth.shape)
    # A larger data_range makes the same error look smaller (skimage's constants scale with it).
    assert metrics.ssim(truth, noisy, data_range=100.0) > metrics.ssim(truth, noisy, data_range=1.0)


def test_rank_histogram_of_a_calibrated_ensemble_is_flat_and_counts_every_point():
    rng = np.random.default_rng(5)
    truth = rng.normal(size=50_000)
    members = rng.normal(size=(4, truth.size))
    hist = metrics.rank_histogram(truth, members)
    assert hist.size == 5 and hist.sum() == truth.size
    assert np.all(np.abs(hist / truth.size - 0.2) < 0.01)
    # Truth always above every member -> everything in the last bin.
    assert metrics.rank_histogram(truth + 100, members)[-1] == truth.size


@pytest.mark.parametrize("days", [1, metrics.SLAB_DAYS, 2 * metrics.SLAB_DAYS + 3])
def test_rank_histogram_in_slabs_of_days_counts_every_day_as_at_once(days):
    """Ranks of a 23-year season are counted a slab of days at a time; ties are broken by the
    same random draws as one pass over every point in day order would make."""
    rng = np.random.default_rng(days)
    truth = np.round(rng.normal(size=(days, 6, 5)), 1)  # rounded: ties between truth and members
    members = np.round(truth[None] + rng.normal(size=(4, days, 6, 5)), 1)
    truth[0, 1, 1], members[2, -1, 0, 0] = np.nan, np.nan
    ok = np.isfinite(truth) & np.all(np.isfinite(members), axis=0)
    xv, yv = members[:, ok], truth[ok]
    draws = np.random.default_rng(7).random(yv.size)
    rank = np.sum(xv < yv, axis=0) + np.floor(draws * (np.sum(xv == yv, axis=0) + 1)).astype(int)
    assert np.array_equal(metrics.rank_histogram(truth, members, seed=7), np.bincount(rank, minlength=5))


@pytest.mark.parametrize("days", [1, metrics.SLAB_DAYS, 3 * metrics.SLAB_DAYS + 5])
def test_power_spectrum_in_slabs_of_days_is_the_mean_over_every_day_to_the_bit(days):
    """A 23-year season's spectrum is taken a slab of days at a time; it is still the mean
    over every day of each day's periodogram, summed in day order."""
    rng = np.random.default_rng(days)
    fields = rng.normal(size=(days, 17, 23)).astype(np.float32)
    fields[0, 2, 3] = np.nan
    f = fields.astype(np.float64)
    f = np.nan_to_num(f - np.nanmean(f, axis=(1, 2), keepdims=True), nan=0.0)
    power = np.mean(np.abs(np.fft.fft2(f * np.outer(np.hanning(17), np.hanning(23)))) ** 2, axis=0)
    k = np.hypot(np.fft.fftfreq(17)[:, None], np.fft.fftfreq(23)[None, :]).ravel()
    edges = np.linspace(0.0, 0.5, 23 // 2 + 1)
    ring = np.digitize(k, edges[1:-1], right=True)
    inside = (k > 0) & (k <= 0.5)
    want = np.bincount(ring[inside], power.ravel()[inside], 11) / np.bincount(ring[inside], minlength=11)
    assert np.array_equal(metrics.power_spectrum(fields)[1], want)


def test_power_spectrum_finds_a_sine_wave_and_spectral_ratio_sees_smoothing():
    y, x = np.mgrid[0:64, 0:64]
    wave = np.sin(2 * np.pi * x / 4.0)  # wavelength 4 px -> k = 0.25
    k, p = metrics.power_spectrum(wave)
    assert abs(k[np.nanargmax(p)] - 0.25) <= 0.5 / k.size
    rng = np.random.default_rng(6)
    truth = rng.normal(size=(4, 64, 64))
    assert metrics.spectral_ratio(truth, truth[None], coarse_cell_px=8) == pytest.approx(1.0)
    from scipy.ndimage import gaussian_filter
    smooth = gaussian_filter(truth, sigma=(0, 2, 2))
    assert metrics.spectral_ratio(truth, smooth[None], coarse_cell_px=8) < 0.1
    assert metrics.spectral_ratio(truth, 2 * truth[None], coarse_cell_px=8) == pytest.approx(4.0)


def test_coarse_consistency_of_the_truth_against_its_own_average_is_exact():
    box = Box((33.0, 35.0), (64.0, 66.5))
    fine, coarse = g5nr_grid(box), merra2_grid(box.padded(0.5))
    avg = metrics.CoarseAverager(fine, coarse)
    assert avg.lat.size >= 2 and avg.lon.size >= 2
    # A constant field averages to itself on every covered cell.
    assert np.allclose(avg(np.full((2, *fine.shape), 0.3)), 0.3)
    rng = np.random.default_rng(7)
    field = 10 ** rng.normal(-1.2, 0.2, size=(3, *fine.shape))
    coarse_field = np.full((3, *coarse.shape), np.nan)
    coarse_field[:, np.ix_(avg.rows, avg.cols)[0], np.ix_(avg.rows, avg.cols)[1]] = avg(field)
    out = metrics.coarse_consistency(field, coarse_field, avg, log10=True)
    assert out["rmse"] == pytest.approx(0.0, abs=1e-12)
    out = metrics.coarse_consistency(field * 10 ** 0.05, coarse_field, avg, log10=True)
    assert out["bias"] == pytest.approx(0.05) and out["rmse"] == pytest.approx(0.05)


def test_score_gives_every_contract_column():
    rng = np.random.default_rng(8)
    truth = rng.normal(size=(4, 16, 20))
    members = truth + 0.3 * rng.normal(size=(3, *truth.shape))
    s = metrics.score(truth, members, coarse_cell=8.9)
    assert set(metrics.METRIC_COLUMNS) <= set(s)
    assert all(np.isfinite(s[c]) for c in metrics.METRIC_COLUMNS)
    with pytest.raises(ValueError, match="do not match"):
        metrics.score(truth, members[:, :2], coarse_cell=8.9)


# --- Scoring the workflow's files (real netCDF files from the twin) ---------------------


TWIN_CONFIG = {"data": {"coarse_period": ["2000-01-01", "2000-03-31"], "fine_period": ["2000-01-20", "2000-03-10"]},
               "regions": {"solo": {"lat": [33.0, 34.5], "lon": [64.0, 65.875]}}, "seasons": {"winter": [1, 2, 3]}}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The bicubic baseline and an ensemble exchangeable with the truth, scored from files."""
    root = tmp_path_factory.mktemp("evaluate")
    box = Box((33.0, 34.5), (64.0, 65.875))
    make_twin([box], 0.5, ("2000-01-01", "2000-03-31"), root / "raw")
    write_split(root / "raw", root / "split", TWIN_CONFIG)
    days = DaySplit.from_json(root / "split/solo/winter/days.json")
    coarse = io.month_files(root / "raw/coarse", "2000-01-01", "2000-03-31")
    fine = io.read_field(root / "split/solo/fine.nc", "DUEXTTAU")
    truth = io.read_field(root / "split/solo/truth.nc", "DUEXTTAU")
    samples = {"bicubic": {}, "diffusion": {}}
    rng = np.random.default_rng(0)
    for period, source in (("test", fine), ("beyond", truth)):
        times = getattr(days, period)
        path = io.write_netcdf(bicubic_record(coarse, "DUEXTTAU", times, fine.lat.values, fine.lon.values, True, 1e-6),
                               root / f"bicubic_{period}.nc")
        samples["bicubic"][period] = str(path)
        # Members and truth are draws around the same centre: a calibrated 8-member ensemble.
        y = np.log10(source.sel(time=times).values)
        z = rng.normal(size=(9, *y.shape)) * 0.1
        members = 10 ** (y[None] - z[:1] + z[1:])
        ds = member_dataset(members, times, fine.lat.values, fine.lon.values, "DUEXTTAU", {"units": "1"})
        samples["diffusion"][period] = str(io.write_netcdf(ds, root / f"ens_{period}.nc"))
    found = scores.evaluate_region_season(samples, root / "split/solo/fine.nc", root / "split/solo/truth.nc",
                                          root / "split/solo/winter/days.json", coarse, "DUEXTTAU", True, 1e-6,
                                          ("2000-01-20", "2000-03-10"), {"variogram_pairs": 4000, "bootstrap": 200})
    return root, samples, days, pd.DataFrame(found.summary).set_index(["model", "period"]), found.diagnostics


def test_every_model_and_period_is_scored(scored):
    _, _, days, table, _ = scored
    assert set(table.index) == {(m, p) for m in ("bicubic", "diffusion") for p in ("test", "beyond")}
    assert table.loc[("bicubic", "beyond"), "days"] == len(days.beyond)
    assert table.loc[("diffusion", "test"), "members"] == 8


def test_scores_tell_a_calibrated_ensemble_from_interpolation(scored):
    _, _, _, table, diag = scored
    for period in ("test", "beyond"):
        ens, bic = table.loc[("diffusion", period)], table.loc[("bicubic", period)]
        assert ens["spread_skill"] == pytest.approx(1.0, abs=0.1)
        assert np.isnan(bic["spread_skill"])
        assert bic["crps"] == pytest.approx(bic["mae"]) and bic["crps_fair"] == pytest.approx(bic["mae"])
        assert ens["crps_fair"] < ens["crps"] < bic["crps"] and ens["r2"] > bic["r2"]
        assert bic["spectral_ratio"] < 0.2 < ens["spectral_ratio"]
        hist = np.asarray(diag["rank_histogram"][period]["diffusion"], float)
        assert hist.size == 9 and np.all(np.abs(hist / hist.sum() - 1 / 9) < 0.03)
    # The twin's coarse record is the fine area mean + 0.05 bias + 0.04 noise (log10 units):
    # that is what the truth's own coarse consistency must measure.
    t = table.loc[("bicubic", "beyond")]
    assert t["coarse_bias_truth"] == pytest.approx(-0.05, abs=0.015)
    assert t["coarse_rmse_truth"] == pytest.approx(np.hypot(0.05, 0.04), abs=0.015)
    assert "drift_rmse_per_year" in table and np.isfinite(table.loc[("bicubic", "beyond"), "drift_rmse_per_year"])


def test_diagnostics_hold_every_curve(scored):
    *_, diag = scored
    assert {"record truth", "beyond truth", "beyond bicubic", "beyond diffusion"} <= set(diag["acf"])
    assert len(diag["acf"]["record truth"]["acf"]) == 31
    assert diag["lags"]["lag"] == list(range(1, 11))
    assert {"test truth", "test diffusion", "beyond bicubic"} <= set(diag["variogram"])
    assert len(diag["variogram_distance_km"]) == 24
    assert set(diag["drift"]) == {"bicubic", "diffusion"}
    json.dumps(diag)  # writable as JSON


def test_beyond_is_scored_on_the_days_with_truth_only(scored):
    # The user's local files may hold truth for some beyond days only (split writes those).
    root, samples, days, table, _ = scored
    truth = io.read_field(root / "split/solo/truth.nc", "DUEXTTAU")
    held = days.beyond[::3]
    lat, lon = truth.lat.values, truth.lon.values

    def evaluate_with(times, name, source=truth):
        part = source.sel(time=times)
        path = io.write_netcdf(io.field_dataset(part.values, times, lat, lon, "DUEXTTAU", {"units": "1"}), root / name)
        found = scores.evaluate_region_season(samples, root / "split/solo/fine.nc", path, root / "split/solo/winter/days.json",
                                              io.month_files(root / "raw/coarse", "2000-01-01", "2000-03-31"), "DUEXTTAU",
                                              True, 1e-6, ("2000-01-20", "2000-03-10"),
                                              {"variogram_pairs": 2000, "bootstrap": 200})
        return pd.DataFrame(found.summary).set_index(["model", "period"]), found.diagnostics

    part, diag = evaluate_with(held, "truth_part.nc")
    assert part.loc[("bicubic", "beyond"), "days"] == len(held) < len(days.beyond)
    bicubic = io.read_field(samples["bicubic"]["beyond"], "DUEXTTAU", dims=("member", "time", "lat", "lon"))
    space = lambda x: transform.to_metric_space(x, True, 1e-6)  # noqa: E731
    expected = metrics.rmse(space(truth.sel(time=held).values), space(bicubic.sel(time=held).values[0]))
    assert part.loc[("bicubic", "beyond"), "rmse"] == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(part.loc[("diffusion", "beyond"), ["r2", "crps", "spread_skill"]].astype(float)).all()
    assert diag["drift"]["bicubic"]["time"] == [str(d.date()) for d in held]
    pd.testing.assert_series_equal(part.loc[("bicubic", "test")], table.loc[("bicubic", "test")])
    # Truth for none of the season's beyond days (say, other months): no beyond rows, test rows as before.
    none, _ = evaluate_with(days.test[:2], "truth_other_days.nc",
                            io.read_field(root / "split/solo/fine.nc", "DUEXTTAU"))
    assert set(none.index) == {("bicubic", "test"), ("diffusion", "test")}


def test_a_sample_file_for_other_days_is_named(scored):
    root, samples, days, _, _ = scored
    wrong = dict(samples)
    wrong["diffusion"] = {"test": samples["diffusion"]["beyond"], "beyond": samples["diffusion"]["beyond"]}
    with pytest.raises(io.DataValidationError, match="ens_beyond.nc.*expected the"):
        scores.evaluate_region_season(wrong, root / "split/solo/fine.nc", None, root / "split/solo/winter/days.json",
                                  io.month_files(root / "raw/coarse", "2000-01-01", "2000-03-31"), "DUEXTTAU", True,
                                  1e-6, ("2000-01-20", "2000-03-10"))


def test_summary_table_orders_rows_and_keeps_the_contract_columns(tmp_path):
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    scores.scores_frame([{"region": "r", "season": "S", "model": "diffusion", "period": "test", "r2": 0.9}]).to_csv(a, index=False)
    scores.scores_frame([{"region": "r", "season": "S", "model": "bicubic", "period": "beyond", "r2": 0.5},
                     {"region": "r", "season": "S", "model": "bicubic", "period": "test", "r2": 0.6}]).to_csv(b, index=False)
    table = scores.summary_table([a, b])
    assert list(table.columns[:4 + len(metrics.METRIC_COLUMNS)]) == ["region", "season", "model", "period", *metrics.METRIC_COLUMNS]
    assert list(zip(table["model"], table["period"])) == [("bicubic", "test"), ("bicubic", "beyond"), ("diffusion", "test")]
    a.write_text("nonsense\n1\n")
    with pytest.raises(io.DataValidationError, match="a.csv"):
        scores.summary_table([a])


def test_write_scores_writes_both_files_in_registry_order_and_logs_each_row(scored, tmp_path, caplog):
    root, samples, days, table, diag = scored
    backwards = {m: samples[m] for m in reversed(list(samples))}  # diffusion before bicubic
    inputs = {f"{m}_s0_{p}": path for m, paths in backwards.items() for p, path in paths.items()}
    assert scores.sample_files(inputs, list(backwards)) == backwards
    assert scores.seed_files(inputs, {m: [0] for m in backwards}) == {m: [paths] for m, paths in backwards.items()}
    with caplog.at_level(logging.INFO, logger="diffscale"):
        written = scores.write_scores(backwards, root / "split/solo/fine.nc", root / "split/solo/truth.nc",
                                      root / "split/solo/winter/days.json",
                                      io.month_files(root / "raw/coarse", "2000-01-01", "2000-03-31"), "DUEXTTAU", True,
                                      1e-6, ["2000-01-20", "2000-03-10"], {"variogram_pairs": 4000, "bootstrap": 200},
                                      region="solo", season="winter", scores_out=tmp_path / "scores.csv",
                                      diagnostics_out=tmp_path / "diagnostics.json",
                                      comparisons_out=tmp_path / "comparisons.csv")
    back = pd.read_csv(tmp_path / "scores.csv")
    assert list(back.columns) == list(written.columns) and list(back.columns[:4]) == ["region", "season", "model", "period"]
    assert list(zip(back["model"], back["period"])) == [("bicubic", "test"), ("diffusion", "test"),
                                                        ("bicubic", "beyond"), ("diffusion", "beyond")]
    assert back.set_index(["model", "period"])["r2"].to_dict() == pytest.approx(table["r2"].to_dict(), rel=1e-5)
    saved = io.read_json(tmp_path / "diagnostics.json")
    assert (saved["region"], saved["season"], saved["models"]) == ("solo", "winter", ["bicubic", "diffusion"])
    assert list(saved["spectra"]["test"]) == ["k", "cutoff", "truth", "bicubic", "diffusion"]
    assert saved["drift"] == diag["drift"]
    assert sum("r2 " in r.getMessage() for r in caplog.records) == 4
    # Each score with its interval; the comparison of bicubic with the method in both periods.
    assert {"rmse_lo", "rmse_hi", "crps_lo", "crps_hi", "r2_lo", "r2_hi", "seeds"} <= set(back.columns)
    assert (back["rmse_lo"] <= back["rmse"]).all() and (back["rmse"] <= back["rmse_hi"]).all()
    compared = pd.read_csv(tmp_path / "comparisons.csv", keep_default_na=False)
    assert list(zip(compared["period"], compared["model"], compared["score"])) == [
        ("test", "bicubic", "rmse"), ("test", "bicubic", "crps_fair"), ("beyond", "bicubic", "rmse"),
        ("beyond", "bicubic", "crps_fair")]
    by_period = back.set_index(["model", "period"])
    for row in compared.itertuples():
        assert row.difference == pytest.approx(by_period.loc[("bicubic", row.period), row.score]
                                               - by_period.loc[("diffusion", row.period), row.score], rel=1e-4)
    # The calibrated ensemble beats interpolation in CRPS by far more than the days' noise.
    assert compared[compared["score"] == "crps_fair"]["better"].eq("diffusion").all()


def test_skill_scores_compare_each_model_with_the_reference_of_its_own_period(scored, tmp_path):
    root, samples, days, table, _ = scored
    rows = [{"region": "solo", "season": "winter", "model": m, "period": p} | dict(table.loc[(m, p)])
            for m, p in table.index]
    skill = scores.scores_frame(rows).set_index(["model", "period"])
    for period in ("test", "beyond"):
        bic, ens = table.loc[("bicubic", period)], table.loc[("diffusion", period)]
        assert skill.loc[("bicubic", period), ["crpss_bicubic", "rmse_ss_bicubic"]].tolist() == [0.0, 0.0]
        assert skill.loc[("diffusion", period), "crpss_bicubic"] == pytest.approx(1 - ens["crps_fair"] / bic["crps_fair"])
        assert skill.loc[("diffusion", period), "rmse_ss_bicubic"] == pytest.approx(1 - ens["rmse"] / bic["rmse"])
    assert skill[["crpss_ceiling", "rmse_ss_ceiling"]].isna().all().all()  # no ceiling model in this table
    # With a ceiling row for one period only: skill against it there, NaN in the other.
    ceiling = {"region": "solo", "season": "winter", "model": "ceiling", "period": "test", "crps_fair": 0.01, "rmse": 0.02}
    skill = scores.scores_frame(rows + [ceiling]).set_index(["model", "period"])
    assert skill.loc[("diffusion", "test"), "crpss_ceiling"] == pytest.approx(1 - table.loc[("diffusion", "test"), "crps_fair"] / 0.01)
    assert skill.loc[("bicubic", "test"), "rmse_ss_ceiling"] == pytest.approx(1 - table.loc[("bicubic", "test"), "rmse"] / 0.02)
    assert np.isnan(skill.loc[("diffusion", "beyond"), "crpss_ceiling"])


def test_write_summary_concatenates_the_score_files(tmp_path):
    path = tmp_path / "scores.csv"
    scores.scores_frame([{"region": "r", "season": "S", "model": "unet", "period": "test", "r2": 0.7},
                         {"region": "r", "season": "S", "model": "oracle", "period": "test", "r2": 0.99},
                         {"region": "r", "season": "S", "model": "vae", "period": "test", "r2": 0.8}]).to_csv(path, index=False)
    table = scores.write_summary([path], tmp_path / "summary.csv")
    assert list(table["model"]) == ["unet", "vae", "oracle"]  # registry order, the oracle last
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "summary.csv"), table)


def test_figures_of_an_ensemble_and_a_deterministic_model(scored, tmp_path):
    from diffscale.plots.diagnostics import diagnostics_figures
    from diffscale.plots.evaluation import evaluation_maps

    root, samples, days, _, diag = scored
    path = tmp_path / "diagnostics.json"
    path.write_text(json.dumps({"region": "solo", "season": "winter", "models": list(samples)} | diag))
    outs = {k: tmp_path / f"{k}.png" for k in ("spectra", "variogram", "acf", "lags", "drift", "rank_histogram")}
    diagnostics_figures(path, "DUEXTTAU", outs)
    coarse = io.month_files(root / "raw/coarse", "2000-01-01", "2000-03-31")
    evaluation_maps(samples, root / "split/solo/fine.nc", root / "split/solo/winter/days.json", coarse,
                    "DUEXTTAU", "1", True, 1e-6, 1, 2, tmp_path / "maps.png")
    for out in [*outs.values(), tmp_path / "maps.png"]:
        assert out.stat().st_size > 10_000, out
