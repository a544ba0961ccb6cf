"""The paper's equations (1), (6), (7) and the Gaussian smoothing on hand-computed tensors."""

import pytest
import torch

from anovit.scoring.anomaly_map import anomaly_maps, gaussian_kernel1d, gaussian_smooth, image_score, reconstruction_loss, score_map


def test_reconstruction_loss_eq1_is_mean_squared_error():
    x = torch.zeros(2, 1, 2, 2)
    y = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[2.0, 2.0], [0.0, 0.0]]]])
    # per image: 1/4 and 8/4; averaged over the batch: (0.25 + 2) / 2
    assert reconstruction_loss(x, y).item() == pytest.approx(1.125)


def test_score_map_eq6_averages_squared_error_over_channels():
    x = torch.zeros(1, 3, 1, 2)
    y = torch.tensor([[[[1.0, 0.0]], [[2.0, 0.0]], [[3.0, 3.0]]]])
    m = score_map(x, y)
    assert m.shape == (1, 1, 2)
    assert m[0, 0].tolist() == pytest.approx([(1 + 4 + 9) / 3, 9 / 3])


def test_image_score_eq7_is_the_map_maximum():
    maps = torch.tensor([[[0.1, 0.5], [0.2, 0.3]], [[0.0, 0.0], [0.0, 0.9]]])
    assert image_score(maps).tolist() == pytest.approx([0.5, 0.9])


def test_gaussian_kernel_sums_to_one_and_matches_formula():
    k = gaussian_kernel1d(1.0)
    assert k.numel() == 9 and k.sum().item() == pytest.approx(1.0)
    assert (k[4] / k[5]).item() == pytest.approx(torch.exp(torch.tensor(0.5)).item())


def test_smoothing_preserves_mass_and_spreads_a_peak():
    maps = torch.zeros(1, 31, 31)
    maps[0, 15, 15] = 1.0
    s = gaussian_smooth(maps, sigma=2.0)
    assert s.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert s[0, 15, 15].item() == pytest.approx(1 / (2 * torch.pi * 4), rel=0.01)
    assert s[0, 15, 15] == s.max()
    assert torch.equal(gaussian_smooth(maps, 0), maps)


def test_smoothing_of_a_constant_map_is_constant():
    maps = torch.full((2, 16, 16), 0.25)
    assert torch.allclose(gaussian_smooth(maps, 4.0), maps)


def test_anomaly_maps_combines_eq6_smoothing_eq7():
    x = torch.zeros(1, 3, 8, 8)
    y = torch.zeros(1, 3, 8, 8)
    y[..., 2, 3] = 1.0
    maps, scores = anomaly_maps(x, y, sigma=0)
    assert maps[0, 2, 3] == 1.0 and maps.sum() == 1.0
    assert scores.tolist() == [1.0]


@pytest.mark.parametrize("bad", [torch.zeros(3, 8, 8), torch.zeros(1, 1, 8, 8)])
def test_shape_errors_name_the_shapes(bad):
    with pytest.raises(ValueError, match="shape"):
        score_map(bad, torch.zeros(1, 3, 8, 8))


def test_smoothing_matches_scipy_gaussian_filter_with_mirror_edges():
    ndimage = pytest.importorskip("scipy.ndimage")
    maps = torch.rand(2, 40, 52)
    ours = gaussian_smooth(maps, sigma=3.0).numpy()
    ref = [ndimage.gaussian_filter(m, 3.0, mode="mirror", truncate=4.0) for m in maps.numpy()]
    assert abs(ours - ref).max() < 1e-5
