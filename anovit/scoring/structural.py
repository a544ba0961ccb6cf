"""Structure-aware error maps, beside eq. (6)'s squared error: pure batched torch functions,
(B, C, H, W) images and reconstructions in -> (B, H, W) error maps out (0: identical, larger: worse).

- :func:`ssim_error_map`  1 - local SSIM (Wang et al. 2004) with an 11 x 11 Gaussian window of sigma
  1.5, K1 = 0.01, K2 = 0.03, data range 1, as the SSIM-AE of Bergmann et al. (2019b) scores; per
  channel, then averaged over channels. The SSIM map is kornia's (``kornia.metrics.ssim``, Apache-2.0),
  which agrees with scikit-image's ``structural_similarity(..., gaussian_weights=True,
  use_sample_covariance=False)`` to 1e-6 away from the 5-pixel border (kornia pads by reflection
  without repeating the edge pixel, scikit-image with it).
- :func:`msgms_error_map`  1 - multi-scale gradient magnitude similarity, as RIAD (Zavrtanik et al.
  2021) and InTra (Pirnay & Chai 2021) score: images averaged over channels to grey; at scales 1,
  1/2, 1/4, 1/8 (2 x 2 average pooling), gradient magnitudes g from 3 x 3 Prewitt filters (weights
  1/3, zero padding), GMS = (2 g_x g_y + c) / (g_x^2 + g_y^2 + c) with c = 0.0026; each 1 - GMS map
  is upsampled bilinearly to the input size and the four are averaged. No library offers this map
  (piq's MS-GMSD reduces to one number per image), so it is written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11  # px, Gaussian window of sigma SSIM_SIGMA (Wang et al. 2004; Bergmann et al. 2019b)
SSIM_SIGMA = 1.5  # px
GMS_C = 0.0026  # RIAD's stability constant (images in [0, 1])
MSGMS_SCALES = 4  # 1, 1/2, 1/4, 1/8


def _check_pair(images: torch.Tensor, recon: torch.Tensor) -> None:
    if images.shape != recon.shape or images.dim() != 4:
        raise ValueError(
            f"expected images and recon of one shape (B, C, H, W); got {tuple(images.shape)} and {tuple(recon.shape)}"
        )


def ssim_error_map(images: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """1 - SSIM map averaged over channels, (B, C, H, W) -> (B, H, W), float32 (see the module doc)."""
    from kornia.metrics import ssim

    _check_pair(images, recon)
    return 1 - ssim(images.float(), recon.float(), SSIM_WINDOW, max_val=1.0).mean(dim=1)


PREWITT_X = torch.tensor([[1.0, 0.0, -1.0]] * 3) / 3


def gradient_magnitude(grey: torch.Tensor) -> torch.Tensor:
    """Prewitt gradient magnitude of grey images (B, 1, H, W), zero padding, same size out."""
    kernels = torch.stack([PREWITT_X, PREWITT_X.T]).unsqueeze(1).to(grey)
    grad = F.conv2d(grey, kernels, padding=1)
    return grad.pow(2).sum(dim=1, keepdim=True).sqrt()


def gms_map(images: torch.Tensor, recon: torch.Tensor, c: float = GMS_C) -> torch.Tensor:
    """Gradient magnitude similarity of grey images (B, 1, H, W) -> (B, 1, H, W), in (0, 1]."""
    gx, gy = gradient_magnitude(images), gradient_magnitude(recon)
    return (2 * gx * gy + c) / (gx.pow(2) + gy.pow(2) + c)


def msgms_error_map(images: torch.Tensor, recon: torch.Tensor, scales: int = MSGMS_SCALES) -> torch.Tensor:
    """1 - MSGMS, (B, C, H, W) -> (B, H, W), float32 (see the module doc)."""
    _check_pair(images, recon)
    x, y = images.float().mean(dim=1, keepdim=True), recon.float().mean(dim=1, keepdim=True)
    size = tuple(images.shape[-2:])
    total = torch.zeros_like(x)
    for scale in range(scales):
        if scale:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
        error = 1 - gms_map(x, y)
        total = total + F.interpolate(error, size=size, mode="bilinear", align_corners=False)
    return (total / scales).squeeze(1)
