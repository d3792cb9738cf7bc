"""Halo tiling and Hann stitching: exact round trip, smooth blending, errors."""

import pytest
import torch

from diffscale.method.tiling import Tiling, TilingChoice, seam_ratio, stride_at

torch.set_num_threads(1)


@pytest.mark.parametrize("shape,tile,halo,stride", [((33, 41), 32, 4, None), ((33, 41), 16, 4, None), ((33, 41), 32, 4, 24),
                                                    ((5, 7), 16, 4, None), ((40, 17), 12, 2, 3), ((16, 16), 16, 0, None)])
def test_cut_then_stitch_gives_the_field_back(shape, tile, halo, stride):
    tiling = Tiling(*shape, tile, halo, stride)
    field = torch.randn(2, 3, *shape, dtype=torch.float64)
    tiles = tiling.cut(field)
    assert tiles.shape == (len(tiling.origins), 2, 3, tile, tile)
    torch.testing.assert_close(tiling.stitch(tiles), field, rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape,tile,halo,stride", [((33, 41), 32, 4, 8), ((33, 41), 16, 4, None), ((57, 61), 16, 4, 2),
                                                    ((5, 7), 16, 4, None), ((40, 17), 12, 0, 5), ((90, 75), 16, 4, 8)])
@pytest.mark.parametrize("lead", [(), (3,), (2, 1)])
def test_gathered_cut_and_stitch_equal_the_loop_to_the_bit(shape, tile, halo, stride, lead):
    """The GPU's path (one gather to cut, K slot-by-slot sums to stitch) gives the CPU loop's values exactly."""
    tiling = Tiling(*shape, tile, halo, stride)
    gen = torch.Generator().manual_seed(len(lead) + tile)
    field = torch.randn(*lead, *shape, generator=gen)
    tiles = tiling.cut(field)
    gathered = tiling.cut_gathered(tiling.pad(field))
    assert gathered.is_contiguous() and torch.equal(gathered, tiles)
    noisy = torch.randn(tiles.shape, generator=gen)  # tiles that disagree where they overlap
    for dtype in (torch.float32, torch.float64):
        loop, vector = tiling.stitch(noisy.to(dtype)), tiling.stitch_gathered(noisy.to(dtype))
        assert vector.dtype == loop.dtype == dtype and torch.equal(vector, loop)


def test_window_is_hann_on_the_core_and_zero_in_the_halo():
    t = Tiling(40, 40, 16, 4)
    w = t.window
    assert (w[:4] == 0).all() and (w[:, -4:] == 0).all()
    assert (w[4:12, 4:12] > 0).all()
    # separable and symmetric, peaking at the core's centre
    torch.testing.assert_close(w[4:12, 4:12], w[4:12, 4:12].T)
    assert w[7, 7] == w[4:12, 4:12].max()


def test_each_tile_only_contributes_its_core():
    """A tile's halo never reaches the result: garbage in the halo changes nothing."""
    t = Tiling(30, 30, 16, 4)
    field = torch.randn(30, 30, dtype=torch.float64)
    tiles = t.cut(field)
    tiles[:, :4, :] = 1e6
    tiles[:, :, -4:] = -1e6
    torch.testing.assert_close(t.stitch(tiles), field, rtol=0, atol=1e-9)


def test_overlapping_disagreeing_tiles_blend_smoothly():
    """Tiles holding different constants (0 or 1) blend without the jump a hard seam would make."""
    t = Tiling(48, 48, 16, 4)
    values = torch.tensor([float((y // 4 + x // 4) % 2) for y, x in t.origins], dtype=torch.float64)
    tiles = values[:, None, None].expand(-1, 16, 16).clone()
    out = t.stitch(tiles)
    jumps = max(float((out[1:] - out[:-1]).abs().max()), float((out[:, 1:] - out[:, :-1]).abs().max()))
    assert jumps < 0.5  # a hard seam jumps by 1


def test_seam_ratio_flags_seams():
    t = Tiling(48, 48, 16, 4, stride=8)
    y, x = torch.meshgrid(torch.arange(48.0, dtype=torch.float64), torch.arange(48.0, dtype=torch.float64), indexing="ij")
    smooth = torch.sin(x / 3.1) + torch.cos(y / 4.3) + 0.5 * torch.sin((x + y) / 2.2)
    assert 0.7 < seam_ratio(smooth, t) < 1.3
    blocky = smooth.clone()
    for k, (y, x) in enumerate(t.origins):
        blocky[y:y + 8, x:x + 8] += 5.0 * (k % 3)
    assert seam_ratio(blocky, t) > 3


def test_bad_tilings_are_refused():
    with pytest.raises(ValueError, match="leaves no core"):
        Tiling(10, 10, 8, 4)
    with pytest.raises(ValueError, match="stride"):
        Tiling(10, 10, 16, 4, stride=9)
    with pytest.raises(ValueError, match="does not match"):
        Tiling(10, 10, 8, 2).cut(torch.zeros(11, 10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)")
def test_the_gpu_cuts_and_stitches_as_the_cpu_does():
    """On a GPU, cut and stitch take the gathered path; the tiles and the stitched field are the CPU's."""
    tiling = Tiling(90, 75, 16, 4, 8)
    field = torch.randn(3, 90, 75, generator=torch.Generator().manual_seed(0))
    tiles = tiling.cut(field)
    assert torch.equal(tiling.cut(field.cuda()).cpu(), tiles)
    noisy = torch.randn(tiles.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(tiling.stitch(noisy.cuda()).cpu(), tiling.stitch(noisy), rtol=0, atol=1e-6)


def test_a_tiling_choice_reads_tile_overlap_and_halo():
    assert TilingChoice.parse("16:0:1") == TilingChoice(16, 0.0, 1)
    assert TilingChoice.parse("32:0.75") == TilingChoice(32, 0.75, None)
    for bad in ("16", "16:x", "16:0:1:2", "a:0"):
        with pytest.raises(ValueError, match="TILE:OVERLAP"):
            TilingChoice.parse(bad)
    # the paper's stride 2 between 8-pixel cores; cores side by side at overlap 0
    assert stride_at(16, 4, 0.75) == 2 and stride_at(16, 1, 0.0) == 14 and stride_at(16, 7, 0.9) == 1
    tiling = TilingChoice(16, 0.0, 1).tiling(33, 41, default_halo=4)
    assert (tiling.halo, tiling.core, tiling.step, len(tiling.origins)) == (1, 14, 14, 9)
    assert TilingChoice(16, 0.0).tiling(33, 41, default_halo=4).halo == 4
    assert TilingChoice(16, 0.0).name(4) == "16:0:4"
