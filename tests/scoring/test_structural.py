"""The structure-aware error maps against independent references on small tensors: SSIM against
scikit-image's, MSGMS against a numpy/scipy computation of RIAD's published definition."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from anovit.scoring.anomaly_map import anomaly_maps, error_map, gaussian_smooth, score_map, training_loss
from anovit.scoring.structural import SSIM_SIGMA, msgms_error_map, ssim_error_map


def _pair(seed: int, channels: int = 3, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(2, channels, size, size, generator=g)
    recon = (images + 0.15 * torch.randn(images.shape, generator=g)).clamp(0, 1)
    return images, recon


def test_ssim_map_matches_scikit_image_away_from_the_border():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    images, recon = _pair(0)
    ours = ssim_error_map(images, recon).numpy()
    for b in range(2):
        per_channel = []
        for c in range(3):
            _, full = skimage_metrics.structural_similarity(
                images[b, c].numpy(), recon[b, c].numpy(), win_size=11, gaussian_weights=True, sigma=1.5,
                use_sample_covariance=False, data_range=1.0, full=True)
            per_channel.append(1 - full)
        reference = np.mean(per_channel, axis=0)
        np.testing.assert_allclose(ours[b, 5:-5, 5:-5], reference[5:-5, 5:-5], atol=1e-5)


def _resize_bilinear(a: np.ndarray, size: int) -> np.ndarray:
    """Half-pixel-centre bilinear upsampling with edge clamping (numpy, separable)."""
    n = a.shape[0]
    pos = np.clip((np.arange(size) + 0.5) * n / size - 0.5, 0, n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = pos - lo
    rows = a[lo] * (1 - w)[:, None] + a[hi] * w[:, None]
    return rows[:, lo] * (1 - w)[None, :] + rows[:, hi] * w[None, :]


def _msgms_reference(image: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """RIAD's 1 - MSGMS for one (C, H, W) pair: grey = channel mean, Prewitt (1/3) gradients with zero
    padding, c = 0.0026, scales 1..1/8 by 2x2 means, bilinear upsampling, averaged."""
    x, y = image.mean(0).astype(np.float64), recon.mean(0).astype(np.float64)
    size, total = x.shape[0], np.zeros_like(x)
    for scale in range(4):
        if scale:
            x = x.reshape(x.shape[0] // 2, 2, -1, 2).mean(axis=(1, 3))
            y = y.reshape(y.shape[0] // 2, 2, -1, 2).mean(axis=(1, 3))
        mags = []
        for a in (x, y):
            gx = ndimage.prewitt(a, axis=1, mode="constant") / 3
            gy = ndimage.prewitt(a, axis=0, mode="constant") / 3
            mags.append(np.hypot(gx, gy))
        gms = (2 * mags[0] * mags[1] + 0.0026) / (mags[0] ** 2 + mags[1] ** 2 + 0.0026)
        total += _resize_bilinear(1 - gms, size)
    return total / 4


def test_msgms_map_matches_the_published_definition():
    images, recon = _pair(1, size=32)
    ours = msgms_error_map(images, recon).numpy()
    for b in range(2):
        np.testing.assert_allclose(ours[b], _msgms_reference(images[b].numpy(), recon[b].numpy()), atol=1e-5)


@pytest.mark.parametrize("score", ["ssim", "msgms", "l2-ssim"])
def test_structural_maps_are_zero_for_a_perfect_reconstruction_and_grow_with_a_defect(score):
    images, _ = _pair(2, size=32)
    assert error_map(images, images.clone(), score).abs().max() < 1e-4
    damaged = images.clone()
    damaged[:, :, 8:16, 8:16] = 0.5
    maps = error_map(images, damaged, score)
    assert maps.shape == (2, 32, 32)
    assert maps[:, 10:14, 10:14].mean() > 10 * maps[:, 24:, 24:].mean()


def test_l2_score_is_eq6_and_unknown_names_are_refused():
    images, recon = _pair(3)
    assert torch.equal(error_map(images, recon, "l2"), score_map(images, recon))
    maps, scores = anomaly_maps(images, recon, 1.0, "msgms")
    assert torch.equal(scores, maps.flatten(1).amax(1))
    with pytest.raises(ValueError, match="score function must be one of"):
        error_map(images, recon, "mse")
    with pytest.raises(ValueError, match="loss must be one of"):
        training_loss(images, recon, "msgms")


def test_l2_ssim_is_the_geometric_mean_of_the_l2_and_ssim_maps():
    images, recon = _pair(5)
    l2, ssim = gaussian_smooth(score_map(images, recon), SSIM_SIGMA), ssim_error_map(images, recon)
    torch.testing.assert_close(error_map(images, recon, "l2-ssim"), (l2 * ssim.clamp_min(0)).sqrt())
    # high only where both are: a pure brightness shift (l2 high, structure kept) scores below the same l2
    # error that also breaks the local structure (noise)
    shifted = (images + 0.1).clamp(0, 1)
    noisy = images + 0.1 * torch.sign(torch.randn_like(images))
    assert error_map(images, shifted, "l2-ssim").mean() < error_map(images, noisy, "l2-ssim").mean()


def test_ssim_loss_is_the_mean_ssim_error_and_has_gradients():
    images, recon = _pair(4)
    recon.requires_grad_(True)
    loss = training_loss(images, recon, "ssim")
    assert loss.item() == pytest.approx(ssim_error_map(images, recon.detach()).mean().item())
    loss.backward()
    assert torch.isfinite(recon.grad).all() and recon.grad.abs().sum() > 0
