"""Attention maps of AnoViT's ViT encoder: per layer, per head, and rolled out through the layers.

timm's ``Attention`` uses fused ``scaled_dot_product_attention``, which never materialises the
attention matrix (hooks on ``attn_drop`` do not fire). Here a forward pre-hook on every block's
``attn`` module captures its input (the block's ``norm1`` output) during AnoViT's own forward pass
and the softmax(q k^T / sqrt(d)) weights are recomputed from ``attn.qkv`` (with ``q_norm``/``k_norm``).

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): the
residual connection is modelled by ``A' = (A + I) / 2`` (rows re-normalised) and the layers are
composed by matrix product, ``R = A'_L ... A'_1``: row i of R says how much each input token
contributes to token i at the last layer.
"""

from __future__ import annotations

import threading

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_FUSIONS = ("mean", "max", "min")


def _attention_weights(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T * scale) of a timm ``Attention`` module for its input ``x`` (B, T, D) -> (B, H, T, T)."""
    b, t, _ = x.shape
    qkv = attn.qkv(x).reshape(b, t, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    return ((q.float() * attn.scale) @ k.float().transpose(-2, -1)).softmax(dim=-1)


@torch.no_grad()
def attention_maps(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """Attention weights of every encoder layer of an AnoViT ``model`` for ``images`` (B, C, H, W) in [0, 1].

    Returns one float32 tensor (B, heads, T, T) per layer, T = prefix tokens + patches, computed
    during ``model.feature_map`` so the input normalisation is exactly the model's. The temporary
    hooks only record forwards run by the calling thread.
    """
    blocks = getattr(model.encoder, "blocks", None)
    if blocks is None or not all(hasattr(b, "attn") and hasattr(b.attn, "qkv") for b in blocks):
        raise ValueError(f"{type(model.encoder).__name__} has no timm ViT blocks with attn.qkv to read attention from")
    captured: list[torch.Tensor] = []
    caller = threading.get_ident()  # the model may be shared: ignore forwards other threads run meanwhile

    def hook(module: nn.Module, args: tuple) -> None:
        if threading.get_ident() == caller:
            captured.append(_attention_weights(module, args[0]))

    handles = [block.attn.register_forward_pre_hook(hook) for block in blocks]
    try:
        model.feature_map(images)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def fuse_heads(attention: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """Combine the heads of (B, H, T, T) attention into (B, T, T) by their mean, max or min."""
    if how not in HEAD_FUSIONS:
        raise ValueError(f"head fusion {how!r} is unknown; expected one of {HEAD_FUSIONS}")
    if attention.dim() != 4:
        raise ValueError(f"expected attention of shape (B, heads, T, T), got {tuple(attention.shape)}")
    if how == "mean":
        return attention.mean(dim=1)
    return attention.amax(dim=1) if how == "max" else attention.amin(dim=1)


def attention_rollout(attentions: list[torch.Tensor], head_fusion: str = "mean") -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) of per-layer (B, H, T, T) weights -> (B, T, T), rows sum to 1."""
    if not attentions:
        raise ValueError("attention rollout needs the attention of at least one layer")
    rollout = None
    for layer in attentions:
        a = fuse_heads(layer, head_fusion)
        a = 0.5 * a + 0.5 * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def patch_attention(attention: torch.Tensor, patch: int, num_prefix_tokens: int, grid: tuple[int, int]) -> torch.Tensor:
    """Where patch ``patch`` (row-major index on the patch grid) attends: (B, T, T) -> (B, gh, gw) over the patches.

    The prefix tokens' share ([cls], registers) is dropped, so a map need not sum to 1.
    """
    gh, gw = grid
    if not 0 <= patch < gh * gw:
        raise ValueError(f"patch index {patch} is outside the {gh}x{gw} patch grid")
    if attention.dim() != 3 or attention.shape[-1] != num_prefix_tokens + gh * gw:
        raise ValueError(
            f"expected attention (B, T, T) with T = {num_prefix_tokens} + {gh * gw}, got {tuple(attention.shape)}"
        )
    row = attention[:, num_prefix_tokens + patch, num_prefix_tokens:]
    return row.reshape(-1, gh, gw)


def upsample_map(maps: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Resize patch-grid maps (B, gh, gw) to pixels (B, H, W) by nearest neighbour (patches stay visible)."""
    return F.interpolate(maps[:, None].float(), size=size, mode="nearest")[:, 0]


def grid_size(model: nn.Module) -> tuple[int, int]:
    """The encoder's patch grid (rows, columns)."""
    return tuple(model.encoder.patch_embed.grid_size)


def patch_size(model: nn.Module) -> int:
    """The encoder's patch side in pixels."""
    return int(model.encoder.patch_embed.patch_size[0])


def mean_attention_distance(
    attention: torch.Tensor, num_prefix_tokens: int, grid: tuple[int, int], patch_px: int
) -> torch.Tensor:
    """Mean distance in pixels from each patch to the patches it attends to, per head: (B, H, T, T) -> (B, H).

    Large values mean global context, small ones local (as in Dosovitskiy et al. 2021, Fig. 7).
    """
    gh, gw = grid
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], dim=-1).float() * patch_px
    dist = torch.cdist(pos, pos)  # (N, N)
    a = attention[..., num_prefix_tokens:, num_prefix_tokens:].float()
    a = a / a.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return (a * dist).sum(dim=-1).mean(dim=-1)


__all__ = [
    "HEAD_FUSIONS",
    "attention_maps",
    "attention_rollout",
    "fuse_heads",
    "grid_size",
    "mean_attention_distance",
    "patch_attention",
    "patch_size",
    "upsample_map",
]


def normalized_entropy(weights: np.ndarray) -> float:
    """Shannon entropy of non-negative ``weights`` (any shape; normalised to sum 1) divided by log(n): 1.0 is
    uniform attention, 0.0 all of it on one token. Raises ValueError for negative weights or a zero sum."""
    w = np.asarray(weights, np.float64).ravel()
    if w.size < 2 or (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"entropy needs at least two non-negative weights with a positive sum; got {w.size} weights")
    p = w / w.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / np.log(w.size))
