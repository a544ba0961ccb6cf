"""Patch masks for masked-patch (inpainting) AnoViT, SimMIM-style (Xie et al. 2022), as pure functions.

A mask is a bool tensor over the patch grid, flattened row-major: (B, N) with N = grid_h * grid_w,
True where the patch is hidden (its token replaced by the learned mask token).

- training: :func:`random_mask` hides ``round(ratio * N)`` patches per image, drawn independently;
- test: :func:`complementary_masks` splits the grid into K disjoint sets that together cover every
  patch exactly once (a seeded random partition, so a hidden patch's neighbours are mostly
  visible); K = :func:`inference_passes` (``round(1 / ratio)``, at least 2). The reconstruction is
  composed (:func:`compose`) by taking each pixel from the pass in which its patch was hidden, as
  RIAD (Zavrtanik et al. 2021) and InTra (Pirnay & Chai 2021) compose their inpainted images.
  Cost: K forward passes per image.
"""

from __future__ import annotations

import torch

TEST_MASK_SEED = 0  # the seed of the test-time partition: every run of one grid uses the same K sets


def inference_passes(mask_ratio: float) -> int:
    """K, the number of complementary test-time masks for ``mask_ratio`` in (0, 1): ``round(1 / ratio)``,
    at least 2 (each pass hides about ``mask_ratio`` of the patches, as in training)."""
    if not 0 < mask_ratio < 1:
        raise ValueError(f"mask_ratio must lie in (0, 1) for masked inference; got {mask_ratio!r}")
    return max(2, round(1 / mask_ratio))


def random_mask(batch: int, n_patches: int, ratio: float, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """(batch, n_patches) bool: ``round(ratio * n_patches)`` hidden patches per row (at least one),
    chosen uniformly at random and independently per row."""
    hidden = max(1, round(ratio * n_patches))
    noise = torch.rand(batch, n_patches, generator=generator, device=device)
    ranks = noise.argsort(dim=1).argsort(dim=1)
    return ranks < hidden


def complementary_masks(n_patches: int, k: int, seed: int = TEST_MASK_SEED) -> torch.Tensor:
    """(k, n_patches) bool: a seeded random partition of the patches into ``k`` disjoint sets of sizes
    differing by at most one; each column holds exactly one True."""
    if not 1 <= k <= n_patches:
        raise ValueError(f"cannot split {n_patches} patches into {k} non-empty masks")
    order = torch.randperm(n_patches, generator=torch.Generator().manual_seed(seed))
    group = torch.empty(n_patches, dtype=torch.long)
    group[order] = torch.arange(n_patches) % k
    return group.unsqueeze(0) == torch.arange(k).unsqueeze(1)


def hide_tokens(tokens: torch.Tensor, mask: torch.Tensor, mask_token: torch.Tensor) -> torch.Tensor:
    """Patch tokens (B, N, D) with the hidden ones (``mask`` (B, N) or (N,) bool) replaced by
    ``mask_token`` (1, 1, D) or (D,)."""
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    keep = (~mask).unsqueeze(-1).to(tokens.dtype)
    return tokens * keep + mask_token.reshape(1, 1, -1).to(tokens.dtype) * (1 - keep)


def pixel_mask(mask: torch.Tensor, grid: tuple[int, int], patch: int, size: tuple[int, int]) -> torch.Tensor:
    """A patch mask (B, N) bool as a pixel mask (B, 1, H, W) float: 1 on the pixels of hidden patches.
    ``size`` is the image's (H, W); pixels beyond the grid's ``grid * patch`` take the nearest patch."""
    b = mask.shape[0]
    blocks = mask.reshape(b, 1, *grid).float()
    pixels = blocks.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)
    if tuple(pixels.shape[-2:]) != tuple(size):
        pixels = torch.nn.functional.interpolate(pixels, size=size, mode="nearest")
    return pixels


def compose(recons: list[torch.Tensor], pixel_masks: list[torch.Tensor]) -> torch.Tensor:
    """One reconstruction (B, C, H, W) from K passes: each pixel from the pass whose pixel mask
    (1 or B, 1, H, W; disjoint, summing to one) hides it."""
    out = torch.zeros_like(recons[0])
    for recon, where in zip(recons, pixel_masks):
        out = out + recon * where.to(recon.dtype)
    return out
