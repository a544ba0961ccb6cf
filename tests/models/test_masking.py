"""Masked-patch AnoViT: the test-time masks hide every patch exactly once, each pixel of the
reconstruction comes from the pass that hid its patch, and mask_ratio 0 is the paper's model unchanged."""

import pytest
import torch

from anovit.utils.errors import ConfigError
from anovit.models.masking import complementary_masks, compose, pixel_mask, random_mask, inference_passes
from anovit.models import AnoViTConfig, create_model


@pytest.mark.parametrize("n, k", [(64, 2), (64, 4), (49, 3), (196, 7)])
def test_complementary_masks_hide_every_patch_exactly_once(n, k):
    masks = complementary_masks(n, k)
    assert masks.shape == (k, n)
    assert torch.equal(masks.sum(0), torch.ones(n, dtype=torch.long))
    sizes = masks.sum(1)
    assert sizes.max() - sizes.min() <= 1
    assert torch.equal(masks, complementary_masks(n, k))  # seeded: the same partition every time


def test_pass_count_and_random_mask_counts():
    assert [inference_passes(r) for r in (0.25, 0.5, 0.3, 0.75)] == [4, 2, 3, 2]
    with pytest.raises(ValueError):
        inference_passes(0)
    mask = random_mask(5, 64, 0.25, torch.Generator().manual_seed(0))
    assert mask.shape == (5, 64) and mask.sum(1).tolist() == [16] * 5
    assert len({tuple(row.tolist()) for row in mask}) == 5  # drawn per image


def test_pixel_mask_marks_the_pixels_of_hidden_patches():
    mask = torch.tensor([[True, False, False, True]])
    pixels = pixel_mask(mask, (2, 2), 4, (8, 8))[0, 0]
    assert pixels[:4, :4].eq(1).all() and pixels[4:, 4:].eq(1).all()
    assert pixels[:4, 4:].eq(0).all() and pixels[4:, :4].eq(0).all()


def _input(seed: int = 1) -> torch.Tensor:
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _model(**overrides):
    torch.manual_seed(0)
    return create_model("anovit", "cpu-tiny", image_size=64, decoder_channels=(32, 16, 16, 8, 8, 8), **overrides)


@pytest.mark.parametrize("decoder", ["stable", "paper"])
def test_mask_ratio_zero_is_the_paper_model_bit_for_bit(decoder):
    default, zero = _model(decoder=decoder), _model(decoder=decoder, mask_ratio=0.0)
    assert AnoViTConfig().mask_ratio == 0
    assert not hasattr(zero, "mask_token") and default.state_dict().keys() == zero.state_dict().keys()
    x = _input()
    with torch.no_grad():
        out = zero.eval()(x)
        # the paper's path written out: timm's forward_features, the grid, the decoder, the head
        tokens = zero.encoder.forward_features((x - zero.mean) / zero.std)[:, zero.num_prefix_tokens:]
        fmap = tokens.transpose(1, 2).reshape(2, -1, 4, 4)
        dec = zero.decoder(fmap)
        if dec.shape[-2:] != x.shape[-2:]:
            dec = torch.nn.functional.interpolate(dec, size=x.shape[-2:], mode="bilinear", align_corners=False)
        expected = zero.head(dec)
        assert torch.equal(out, expected)
        assert torch.equal(out, default.eval()(x))
    torch.manual_seed(5)
    train_a = zero.train()(x)
    torch.manual_seed(5)
    assert torch.equal(train_a, zero(x))  # no random masking in training either


def test_masked_inference_takes_each_pixel_from_the_pass_that_hid_its_patch():
    model = _model(mask_ratio=0.25).eval()
    assert model.test_masks.shape == (4, 16) and model.test_masks.sum(0).eq(1).all()
    x = _input(2)
    with torch.no_grad():
        out = model(x)
        for mask in model.test_masks:
            where = pixel_mask(mask.unsqueeze(0), (4, 4), 16, (64, 64)).bool().expand_as(out)
            assert torch.equal(out[where], model.reconstruct(x, mask)[where])
        assert not torch.equal(out, model.reconstruct(x))  # hiding changes the reconstruction
    assert set(model.state_dict()) - set(_model().state_dict()) == {"mask_token"}


def test_hidden_tokens_get_the_mask_token_and_no_mask_is_timm_forward_features():
    model = _model(mask_ratio=0.5).eval()
    x = (_input(3) - model.mean) / model.std
    with torch.no_grad():
        assert torch.equal(model.masked_features(x, torch.zeros(16, dtype=torch.bool)), model.encoder.forward_features(x))
        hidden = torch.zeros(16, dtype=torch.bool)
        hidden[0] = True
        a = model.masked_features(x, hidden)
        b = model.masked_features(x.flip(-1), hidden)  # another image: the hidden token's input is the same
        assert not torch.equal(a, model.encoder.forward_features(x))
    model.train()
    model(_input()).pow(2).mean().backward()
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    assert a.shape == b.shape


def test_compose_is_exact_for_disjoint_masks():
    recons = [torch.full((1, 1, 2, 2), float(v)) for v in (1, 2)]
    where = [torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]), torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])]
    assert compose(recons, where)[0, 0].tolist() == [[1.0, 2.0], [2.0, 1.0]]


@pytest.mark.parametrize("ratio", [-0.1, 0.95, "0.5", True])
def test_a_bad_mask_ratio_is_refused_naming_the_field(ratio):
    with pytest.raises(ConfigError, match="mask_ratio"):
        AnoViTConfig(mask_ratio=ratio)
