"""ViT attention maps and rollout (anovit.models.attention)."""

import pytest
import torch

from anovit.models.attention import (
    attention_maps,
    attention_rollout,
    fuse_heads,
    grid_size,
    mean_attention_distance,
    patch_attention,
    patch_size,
    upsample_map,
)
from anovit.models import create_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("anovit", "cpu-tiny", image_size=64).eval()


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_attention_maps_match_timm_unfused_attention(model, images):
    ours = attention_maps(model, images)
    reference = []
    for block in model.encoder.blocks:
        block.attn.fused_attn = False  # the slow path materialises softmax(qk^T) and runs attn_drop on it
    hooks = [
        b.attn.attn_drop.register_forward_hook(lambda m, i, o: reference.append(o.detach()))
        for b in model.encoder.blocks
    ]
    try:
        with torch.no_grad():
            model.feature_map(images)
    finally:
        for h in hooks:
            h.remove()
        for block in model.encoder.blocks:
            block.attn.fused_attn = True
    tokens = model.num_prefix_tokens + grid_size(model)[0] * grid_size(model)[1]
    assert len(ours) == len(model.encoder.blocks) == len(reference)
    for a, r in zip(ours, reference):
        assert a.shape == (2, model.encoder.blocks[0].attn.num_heads, tokens, tokens)
        torch.testing.assert_close(a, r, atol=1e-5, rtol=1e-4)


def test_attention_maps_leave_no_hooks(model, images):
    attention_maps(model, images)
    assert all(not b.attn._forward_pre_hooks for b in model.encoder.blocks)


def test_rollout_rows_sum_to_one_and_shape(model, images):
    layers = attention_maps(model, images)
    t = layers[0].shape[-1]
    for fusion in ("mean", "max", "min"):
        rollout = attention_rollout(layers, fusion)
        assert rollout.shape == (2, t, t)
        assert (rollout >= 0).all()
        torch.testing.assert_close(rollout.sum(-1), torch.ones(2, t))


def test_rollout_of_identity_attention_is_identity_and_of_one_layer_is_half_residual():
    eye = torch.eye(5).expand(1, 2, 5, 5)
    torch.testing.assert_close(attention_rollout([eye, eye, eye]), torch.eye(5)[None])
    uniform = torch.full((1, 1, 4, 4), 0.25)
    expected = 0.5 * torch.full((4, 4), 0.25) + 0.5 * torch.eye(4)
    torch.testing.assert_close(attention_rollout([uniform])[0], expected)


def test_fuse_heads_and_bad_input():
    a = torch.stack([torch.eye(3), torch.full((3, 3), 1 / 3)])[None]
    torch.testing.assert_close(fuse_heads(a, "max")[0], torch.maximum(torch.eye(3), torch.full((3, 3), 1 / 3)))
    with pytest.raises(ValueError, match="head fusion"):
        fuse_heads(a, "median")
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])


def test_patch_attention_reads_the_patch_row_without_prefix_tokens():
    t = 1 + 4
    attn = torch.arange(t * t, dtype=torch.float32).reshape(1, t, t)
    grid_map = patch_attention(attn, patch=2, num_prefix_tokens=1, grid=(2, 2))
    torch.testing.assert_close(grid_map[0], attn[0, 3, 1:].reshape(2, 2))
    with pytest.raises(ValueError, match="outside"):
        patch_attention(attn, 4, 1, (2, 2))


def test_geometry_helpers(model):
    assert grid_size(model) == (4, 4) and patch_size(model) == 16
    up = upsample_map(torch.arange(4.0).reshape(1, 2, 2), 4)
    torch.testing.assert_close(up[0, :2, :2], torch.zeros(2, 2))
    assert up.shape == (1, 4, 4)


def test_mean_attention_distance_local_and_uniform():
    n = 9
    eye = torch.eye(1 + n)[None, None]
    assert mean_attention_distance(eye, 1, (3, 3), 16).item() == pytest.approx(0.0)
    uniform = torch.full((1, 1, 1 + n, 1 + n), 1 / (1 + n))
    rows, cols = torch.meshgrid(torch.arange(3), torch.arange(3), indexing="ij")
    pos = torch.stack([rows.flatten(), cols.flatten()], -1).float() * 16
    assert mean_attention_distance(uniform, 1, (3, 3), 16).item() == pytest.approx(
        torch.cdist(pos, pos).mean().item(), rel=1e-5
    )


def test_normalized_entropy_is_one_for_uniform_and_zero_for_one_token():
    import numpy as np
    from scipy.stats import entropy

    from anovit.models.attention import normalized_entropy

    assert normalized_entropy(np.full((4, 4), 0.01)) == pytest.approx(1.0)
    assert normalized_entropy(np.eye(1, 16).reshape(4, 4)) == pytest.approx(0.0)
    w = np.random.default_rng(0).random((8, 8))
    assert normalized_entropy(w) == pytest.approx(entropy(w.ravel()) / np.log(64))  # scipy as the reference
    with pytest.raises(ValueError, match="non-negative"):
        normalized_entropy(np.zeros(4))
