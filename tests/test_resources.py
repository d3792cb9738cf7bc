"""Memory and run time requests (diffscale.core.resources): they cover what the rules
were measured to use, grow with the config's sizes and with each retry, and fit a 22 GB
node for the demo."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from diffscale.core import resources as rs
from diffscale.core.config import baseline_settings, load_config

DEMO = load_config(ROOT / "config/config.yaml")
PAPER = load_config(ROOT / "config/paper.yaml")
PAPER_TWIN_NOW = load_config(ROOT / "config/paper_twin.yaml")
# The twin as its rows below were measured: the paper's 40-day history and its references
# (ceiling, oracle) scored; config/paper_twin.yaml has since taken 8 days and left them out.
PAPER_TWIN = dict(PAPER_TWIN_NOW, encoder=dict(PAPER_TWIN_NOW["encoder"], history=40),
                  evaluation=dict(PAPER_TWIN_NOW["evaluation"], oracle=True))
PAPER_TWIN_5Y = dict(PAPER_TWIN, data=dict(PAPER_TWIN["data"], coarse_period=["2004-01-01", "2008-12-31"]))

# (rule, config, region, season, max_rss MB, s) from the rules' benchmark files: the demo
# (config/config.yaml, region west; the data rules run alone, the rest from a full demo
# run) and the same config over a 4 x 5 and an 8 x 10 degree region (5265 and 20769 fine
# pixels);
# README.md, "Resources", gives the commands.
MID = dict(DEMO, regions={"mid": {"lat": [30.0, 34.0], "lon": [62.0, 67.0]}})
BIG = dict(DEMO, regions={"big": {"lat": [28.0, 36.0], "lon": [60.0, 70.0]}})
# The diffusion model's measurement was taken when the demo trained it 600 steps (now 400,
# selected by make tune); its work grows with the steps.
DEMO_600_STEPS = dict(DEMO, diffusion=dict(DEMO["diffusion"], steps=600))
MEASURED = [
    ("make_synthetic", DEMO, "west", None, 161.94, 20.28),
    ("regrid", DEMO, "west", None, 142.81, 11.70),
    ("regrid_fine_to_coarse", DEMO, "west", None, 144.92, 7.56),
    ("split_region", DEMO, "west", None, 153.46, 18.32),
    ("split", DEMO, "west", "DJF", 148.73, 3.81),
    ("domain", DEMO, "west", None, 490.85, 22.00),  # the full demo run; 482.85 alone
    ("make_synthetic", MID, "mid", None, 183.05, 106.64),
    ("regrid", MID, "mid", None, 147.79, 39.98),
    ("regrid_fine_to_coarse", MID, "mid", None, 150.92, 34.11),
    ("split_region", MID, "mid", None, 162.48, 82.27),
    ("split", MID, "mid", "DJF", 167.54, 11.98),
    ("make_synthetic", BIG, "big", None, 242.73, 271.79),
    ("regrid", BIG, "big", None, 153.25, 30.41),
    ("regrid_fine_to_coarse", BIG, "big", None, 161.51, 21.65),
    ("split_region", BIG, "big", None, 206.27, 91.04),
    ("split", BIG, "big", "DJF", 233.38, 7.03),
    ("pretrain_encoder", DEMO, "west", "JJA", 588.69, 15.94),
    ("train_diffusion", DEMO_600_STEPS, "west", "JJA", 487.76, 71.89),
    ("train_baseline", DEMO, "west", "DJF", 505.75, 762.08),
    ("sample", DEMO, "west", "DJF", 642.69, 41.74),
    ("sample_beyond", DEMO, "west", "DJF", 449.64, 357.99),
    ("sampler_benchmark", DEMO, "west", "DJF", 426.00, 23.91),
    ("gather_beyond", DEMO, "west", "DJF", 443.41, 12.67),
    ("sample_bicubic", DEMO, "west", "DJF", 153.91, 3.00),
    ("evaluate", DEMO, "west", "JJA", 378.60, 20.68),
    ("plot_evaluation", DEMO, "west", "JJA", 239.72, 26.57),
    ("assemble", DEMO, "west", None, 263.61, 5.37),
    # diffscale.method.aggregates.aggregate_file on that run's product under /usr/bin/time
    ("aggregate", DEMO, "west", None, 211.8, 55.63),
    # The paper-size twin (config/paper_twin.yaml, area1, 25 years; make paper-twin), two jobs
    # side by side on 2 cores, and the same over 5 years (PAPER_TWIN_5Y)
    ("make_synthetic", PAPER_TWIN, "area1", None, 1025.97, 1626.61),
    ("regrid", PAPER_TWIN, "area1", None, 246.63, 390.34),
    ("regrid_fine_to_coarse", PAPER_TWIN, "area1", None, 245.29, 103.99),
    ("split_region", PAPER_TWIN, "area1", None, 266.00, 578.58),
    ("split", PAPER_TWIN, "area1", "MAM", 1068.57, 13.74),
    ("sample_bicubic", PAPER_TWIN, "area1", "JJA", 254.55, 80.06),
    ("pretrain_encoder", PAPER_TWIN, "area1", "MAM", 7071.27, 187.57),
    ("pretrain_encoder", PAPER_TWIN, "area1", "SON", 8446.25, 341.93),
    ("train_baseline", PAPER_TWIN, "area1", "MAM", 6502.89, 111.48),
    ("domain", PAPER_TWIN, "area1", None, 3934.96, 1243.66),
    # the full run at 14587e4..684198b (README, "Paper-size data"; the later rules, the largest job of each)
    ("train_baseline", PAPER_TWIN, "area1", "SON", 7654.96, 20.49),
    ("train_diffusion", PAPER_TWIN, "area1", "JJA", 6541.81, 439.0),
    ("sample", PAPER_TWIN, "area1", "MAM", 2478.38, 23.03),
    ("sample_beyond", PAPER_TWIN, "area1", "DJF", 2481.0, 70.0),
    ("sampler_benchmark", PAPER_TWIN, "area1", "MAM", 2472.25, 15.0),
    ("gather_beyond", PAPER_TWIN, "area1", "MAM", 2331.0, 130.0),
    ("sample_references", PAPER_TWIN, "area1", None, 1136.55, 524.83),
    ("assemble", PAPER_TWIN, "area1", None, 2140.56, 340.99),
    ("aggregate", PAPER_TWIN, "area1", None, 4597.49, 63.21),  # monthly
    # evaluate at e505221 (its scores in slabs of days): the peak RSS sampled every 5 s by ps
    # (the benchmark file's max_rss read 11,912 MB), and the benchmark's wall time
    ("evaluate", PAPER_TWIN, "area1", "DJF", 15608.3, 1290.81),
    # the whole run at 1a14ffa, its second half with a8ce6b4's library and nothing else running
    # (README, "Paper-size data"): 4-year sample_beyond blocks; evaluate's RSS is the peak
    # sampled every 15 s by ps (its benchmark file read 8,917 MB)
    ("sample_beyond", PAPER_TWIN, "area1", "MAM", 2460.21, 241.6),
    ("sample_beyond", PAPER_TWIN, "area1", "JJA", 2952.29, 212.15),
    ("gather_beyond", PAPER_TWIN, "area1", "MAM", 4061.05, 177.66),
    ("gather_beyond", PAPER_TWIN, "area1", "SON", 2949.98, 191.87),
    ("evaluate", PAPER_TWIN, "area1", "MAM", 11556.0, 936.86),
    ("assemble", PAPER_TWIN, "area1", None, 2185.63, 406.79),
    ("aggregate", PAPER_TWIN, "area1", None, 1294.28, 77.5),  # monthly
    # the whole run of config/paper_twin.yaml at 2868f22/454a6a6 (8-day history, no references,
    # zstd), make paper-twin CORES=2: each rule's largest job
    ("make_synthetic", PAPER_TWIN_NOW, "area1", None, 1039.02, 601.08),
    ("domain", PAPER_TWIN_NOW, "area1", None, 3486.88, 398.94),
    ("split", PAPER_TWIN_NOW, "area1", "DJF", 1221.52, 4.51),
    ("pretrain_encoder", PAPER_TWIN_NOW, "area1", "JJA", 4349.17, 50.68),
    ("train_baseline", PAPER_TWIN_NOW, "area1", "JJA", 4297.60, 26.80),
    ("train_diffusion", PAPER_TWIN_NOW, "area1", "JJA", 3960.02, 52.24),
    ("sample", PAPER_TWIN_NOW, "area1", "JJA", 2380.75, 24.80),
    ("sample_beyond", PAPER_TWIN_NOW, "area1", "JJA", 2880.81, 126.30),
    ("sampler_benchmark", PAPER_TWIN_NOW, "area1", "SON", 2358.71, 17.31),
    ("gather_beyond", PAPER_TWIN_NOW, "area1", "MAM", 4081.68, 144.70),
    ("evaluate", PAPER_TWIN_NOW, "area1", "SON", 8929.43, 514.79),
    ("assemble", PAPER_TWIN_NOW, "area1", None, 2189.51, 182.88),
    ("aggregate", PAPER_TWIN_NOW, "area1", None, 948.39, 95.91),  # monthly
    # the third whole run, at 65a29c2: every job with malloc's freed memory kept in the heap
    # (diffscale.core.allocator), make_synthetic on 2 threads (README, "Paper-size data")
    ("make_synthetic", PAPER_TWIN_NOW, "area1", None, 1284.06, 297.46),
    ("domain", PAPER_TWIN_NOW, "area1", None, 3971.24, 296.89),
    ("split", PAPER_TWIN_NOW, "area1", "JJA", 1365.66, 91.86),
    ("pretrain_encoder", PAPER_TWIN_NOW, "area1", "MAM", 11580.08, 76.76),
    ("train_baseline", PAPER_TWIN_NOW, "area1", "SON", 5642.86, 13.93),
    ("train_diffusion", PAPER_TWIN_NOW, "area1", "MAM", 6082.86, 46.48),
    ("sample", PAPER_TWIN_NOW, "area1", "JJA", 2972.59, 46.60),
    ("sample_beyond", PAPER_TWIN_NOW, "area1", "MAM", 3357.21, 108.12),
    ("sampler_benchmark", PAPER_TWIN_NOW, "area1", "SON", 2428.65, 28.03),
    ("members_curve", PAPER_TWIN_NOW, "area1", "JJA", 3002.09, 49.69),
    ("gather_beyond", PAPER_TWIN_NOW, "area1", "JJA", 4948.00, 78.38),
    ("evaluate", PAPER_TWIN_NOW, "area1", "JJA", 9801.80, 284.34),
    ("assemble", PAPER_TWIN_NOW, "area1", None, 2529.07, 66.78),
    ("aggregate", PAPER_TWIN_NOW, "area1", None, 1502.03, 33.34),  # monthly
    ("make_synthetic", PAPER_TWIN_5Y, "area1", None, 1019.17, 298.85),
    ("domain", PAPER_TWIN_5Y, "area1", None, 3474.27, 642.91),
    ("sample_references", PAPER_TWIN_5Y, "area1", None, 1187.88, 300.90),
]


def request(rule: str, config: dict, region: str | None, season: str | None, attempt: int = 1) -> tuple[int, int]:
    sizes = rs.Sizes(config)
    train = baseline_settings(config["baselines"], config["diffusion"]) if rule == "train_baseline" else None
    held, work = sizes.estimate(rule, region, season, train=train)
    return rs.mem_mb(rule, held, attempt), rs.runtime(rule, work, attempt)


@pytest.mark.parametrize("rule,config,region,season,rss,seconds", MEASURED,
                         ids=[f"{m[0]}-{m[2]}" for m in MEASURED])
def test_requests_cover_the_measured_use(rule, config, region, season, rss, seconds):
    """The footprint alone (before the safety factor and the floors) covers the measurement."""
    sizes = rs.Sizes(config)
    train = baseline_settings(config["baselines"], config["diffusion"]) if rule == "train_baseline" else None
    held, work = sizes.estimate(rule, region, season, train=train)
    f = rs.FOOTPRINTS[rule]
    assert f.base_mb + f.mb_per_mb * held >= rss, (rule, held, rss)
    assert f.base_s + f.s_per_unit * work >= seconds, (rule, work, seconds)
    mem, minutes = request(rule, config, region, season)
    assert mem >= rs.SAFETY * rss and minutes * 60 >= rs.SAFETY * seconds


def test_every_benchmarked_rule_asks_through_its_own_footprint():
    """Each rule with a benchmark: file asks mem_mb and runtime with its own name (a copied
    resources: block naming another rule would size it wrongly), and has a footprint."""
    text = "\n".join(p.read_text() for p in (ROOT / "workflow/rules").glob("*.smk"))
    blocks = re.split(r"^\s*rule (\w+):\n", text, flags=re.M)[1:]
    benchmarked = 0
    for name, body in zip(blocks[::2], blocks[1::2]):
        body = re.split(r"^\s*(?:rule|use rule|if) ", body, flags=re.M)[0]
        if "benchmark:" not in body:
            continue
        benchmarked += 1
        assert f'mem_mb=job_mem_mb("{name}")' in body, name
        assert f'runtime=job_runtime("{name}")' in body, name
        assert name in rs.FOOTPRINTS, name
    assert benchmarked >= 15


def test_demo_asks_little_and_fits_a_22_gb_node():
    for rule in rs.FOOTPRINTS:
        mem, minutes = request(rule, DEMO, "west", "DJF", attempt=3)
        assert mem <= 4000, (rule, mem)  # even the third attempt
        assert minutes <= 120, (rule, minutes)


def test_paper_asks_more_than_the_demo_and_what_its_records_need():
    for rule in rs.FOOTPRINTS:
        demo_mem, demo_min = request(rule, DEMO, "west", "DJF")
        paper_mem, paper_min = request(rule, PAPER, "area1", "DJF")
        # a rule that holds a month asks the floor for both
        assert (paper_mem >= demo_mem if rule in rs.STREAMING else paper_mem > demo_mem), (rule, demo_mem, paper_mem)
        assert paper_min >= demo_min, (rule, demo_min, paper_min)
    # area1's coarse record on the fine grid: 154224 pixels x 9132 days of float32
    record = 154224 * 9132 * 4 / rs.MB
    fine = 154224 * 763 * 4 / rs.MB  # its fine record, 2005-05-15..2007-06-16
    assert rs.Sizes(PAPER).record_mb("area1") == pytest.approx(record)
    assert rs.Sizes(PAPER).fine_mb("area1") == pytest.approx(fine)
    # domain streams the coarse record: it asks for the fine record and its copies, whatever the coarse period
    five_years = dict(PAPER, data=dict(PAPER["data"], coarse_period=["2003-01-01", "2007-12-31"]))
    assert fine < request("domain", PAPER, "area1", None)[0] == request("domain", five_years, "area1", None)[0]
    # split_region holds a month, but asks by the record its monthly files add up to
    assert request("split_region", PAPER, "area1", None)[0] > request("split_region", DEMO, "west", None)[0]
    # area0 is half area1's size: it asks less
    assert request("domain", PAPER, "area0", None)[0] < request("domain", PAPER, "area1", None)[0]


def test_the_streaming_rules_ask_the_same_for_five_years_as_for_twenty_five():
    """What a job of a streaming rule holds follows the region and the fine record, not the
    coarse record's length (a block of sample_beyond or gather_beyond, a slab of assemble, is a year whatever the record)."""
    short = PAPER_TWIN_5Y
    for rule in ("domain", "train_diffusion", "sample", "sample_beyond", "sampler_benchmark", "sample_bicubic",
                 "gather_beyond", "assemble"):
        assert request(rule, short, "area1", "DJF")[0] == request(rule, PAPER_TWIN, "area1", "DJF")[0], rule
    for rule in ("pretrain_encoder", "evaluate"):  # the season's share of the record, by nature
        assert request(rule, short, "area1", "DJF")[0] < request(rule, PAPER_TWIN, "area1", "DJF")[0], rule


def test_each_retry_asks_more():
    held, work = rs.Sizes(PAPER).estimate("split_region", "area1")
    first, second, third = (rs.mem_mb("split_region", held, a) for a in (1, 2, 3))
    assert second == pytest.approx(1.5 * first, rel=0.01) and third == pytest.approx(2 * first, rel=0.01)
    assert rs.runtime("split_region", work, 2) > rs.runtime("split_region", work, 1)
    with pytest.raises(ValueError, match="attempt"):
        rs.mem_mb("split_region", held, 0)


def test_runtime_is_capped_and_floored():
    assert rs.runtime("train_baseline", 1e12) == rs.MAX_RUNTIME_MIN
    assert rs.runtime("split", 0.0) == rs.MIN_RUNTIME_MIN


def test_larger_input_than_the_config_says_wins(tmp_path):
    """An input file on disk larger than the config's float32 estimate (float64 files,
    extra variables) sizes the job; the largest file counts, not the sum (the evaluation
    rules read many files one after another); missing inputs (a dry run) leave the estimate."""
    big, small = tmp_path / "big.nc", tmp_path / "small.nc"
    big.write_bytes(b"\0" * (3 * rs.MB))
    small.write_bytes(b"\0" * (rs.MB // 2))
    assert rs.largest_input_mb([small, big]) == pytest.approx(3.0)
    assert rs.largest_input_mb([big, tmp_path / "not-yet.nc"]) is None
    assert rs.held(2.0, rs.largest_input_mb([big, small])) == pytest.approx(3.0)
    assert rs.held(5.0, rs.largest_input_mb([big, small])) == 5.0
    assert rs.held(2.0, None) == 2.0
    assert rs.mem_mb("domain", 20000.0) > rs.mem_mb("domain", 2.0)


def test_unknown_rules_and_missing_wildcards_are_named():
    with pytest.raises(KeyError, match="no_such_rule"):
        rs.mem_mb("no_such_rule", 1.0)
    with pytest.raises(ValueError, match="evaluate.*season"):
        rs.Sizes(DEMO).estimate("evaluate", "west")


def test_the_apply_rules_follow_the_days_of_the_new_data():
    """Eighty years of new coarse data ask more than one: memory and work grow with the days."""
    sizes = rs.Sizes(PAPER)
    for rule in ("apply_coarse", "apply_regrid", "apply_sample", "apply_assemble"):
        short = sizes.estimate(rule, "area1", "DJF", days=365)
        long = sizes.estimate(rule, "area1", "DJF", days=80 * 365)
        assert long[0] == pytest.approx(80 * short[0]) and long[1] == pytest.approx(80 * short[1]), rule
    assert rs.mem_mb("apply_sample", sizes.estimate("apply_sample", "area1", "DJF", days=80 * 365)[0]) > \
        rs.mem_mb("apply_sample", sizes.estimate("apply_sample", "area1", "DJF", days=365)[0])
