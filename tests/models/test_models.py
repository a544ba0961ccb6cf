"""Model shapes for every preset, the patch-grid layout, the CAE layer plan and encoder weights."""

import pytest
import torch
from safetensors.torch import save_file

from anovit.utils.errors import OfflineError
from anovit.models import PRESETS, AnoViT, AnoViTConfig, L2CAE, L2CAEConfig, create_model
from anovit.models.anovit import decoder_strides, paper_decoder
from anovit.models.cae import bottleneck_plan


@pytest.mark.parametrize("model", sorted(PRESETS))
@pytest.mark.parametrize("preset", ["cpu-tiny", "cpu-small", "paper"])
def test_every_preset_reconstructs_at_its_size(model, preset):
    overrides = {"pretrained": False} if model == "anovit" else {}
    net = create_model(model, preset, **overrides).eval()
    size = net.config.image_size
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_feature_map_is_d_channels_on_the_patch_grid():
    net = AnoViT(AnoViTConfig(encoder="vit_tiny_patch16_224", image_size=128)).eval()
    with torch.no_grad():
        f = net.feature_map(torch.rand(2, 3, 128, 128))
    assert f.shape == (2, 192, 8, 8)


@pytest.mark.parametrize("encoder,size,prefix", [
    ("deit_tiny_distilled_patch16_224", 128, 2),   # cls + distillation token
    ("vit_small_patch14_reg4_dinov2", 112, 5),     # cls + 4 registers
])
def test_all_prefix_tokens_are_dropped(encoder, size, prefix):
    net = AnoViT(AnoViTConfig(encoder=encoder, image_size=size)).eval()
    assert net.num_prefix_tokens == prefix
    with torch.no_grad():
        f = net.feature_map(torch.rand(1, 3, size, size))
        y = net(torch.rand(1, 3, size, size))
    assert f.shape[-2:] == (8, 8)
    assert y.shape == (1, 3, size, size)


@pytest.mark.parametrize("row,col", [(0, 0), (2, 5), (7, 3)])
def test_grid_reshape_keeps_patches_in_place(row, col):
    torch.manual_seed(0)
    net = AnoViT(AnoViTConfig(encoder="vit_tiny_patch16_224", image_size=128)).eval()
    x = torch.rand(1, 3, 128, 128)
    x2 = x.clone()
    x2[:, :, row * 16:(row + 1) * 16, col * 16:(col + 1) * 16] = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        change = (net.feature_map(x2) - net.feature_map(x)).norm(dim=1)[0]
    assert divmod(int(change.argmax()), 8) == (row, col)


def test_decoder_strides_undo_the_patch_size():
    assert decoder_strides(16) == [1, 2, 2, 2, 2, 1]
    assert decoder_strides(8) == [1, 2, 2, 2, 1, 1]
    assert decoder_strides(14) == [1, 2, 2, 2, 2, 1]  # 16x, then upsampled to the input size


def test_decoder_has_six_transposed_conv_relu_blocks():
    net = AnoViT(AnoViTConfig())
    convs = [m for m in net.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    relus = [m for m in net.decoder if isinstance(m, torch.nn.ReLU)]
    assert len(convs) == len(relus) == 6
    assert net.head.out_channels == 3


def test_paper_decoder_is_the_authors_plan_without_norm_or_head():
    # The authors' code at 384 px: 24 -> 26, 28, 30 (k3 s1 p0), 59, 117, 233 (k3 s2 p1), then upsampled.
    blocks, head = paper_decoder(768, (256, 128, 64, 32, 16, 16), 3)
    x, sides = torch.rand(1, 768, 24, 24), []
    for layer in blocks:
        x = layer(x)
        sides += [x.shape[-1]] if isinstance(layer, torch.nn.ConvTranspose2d) else []
    assert sides == [26, 28, 30, 59, 117, 233] and x.shape[1] == 3
    assert isinstance(head, torch.nn.Identity)
    assert [type(m).__name__ for m in blocks] == ["ConvTranspose2d", "ReLU"] * 6


def test_decoder_choice_is_validated_and_stable_by_default():
    assert AnoViTConfig().decoder == "stable"
    with pytest.raises(ValueError, match="field .decoder. must be one of"):
        AnoViTConfig(decoder="plain")
    net = AnoViT(AnoViTConfig(decoder="paper"))
    out = net(torch.rand(2, 3, 128, 128))
    assert out.shape == (2, 3, 128, 128) and out.min() >= 0  # ReLU last, then bilinear upsampling


def test_cae_follows_bergmann_layer_table_at_128():
    net = L2CAE(L2CAEConfig(image_size=128, latent_dim=100))
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size[0], c.stride[0], c.out_channels) for c in convs] == [
        (4, 2, 32), (4, 2, 32), (3, 1, 32), (4, 2, 64), (3, 1, 64), (4, 2, 128), (3, 1, 64), (3, 1, 32), (8, 1, 100)]
    assert net.encode(torch.rand(2, 3, 128, 128)).shape == (2, 100, 1, 1)
    layers = [m for m in net.decoder if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(type(c).__name__[4:], c.kernel_size[0], c.stride[0], c.out_channels) for c in layers] == [
        ("Transpose2d", 8, 1, 32), ("2d", 3, 1, 64), ("2d", 3, 1, 128), ("Transpose2d", 4, 2, 64), ("2d", 3, 1, 64),
        ("Transpose2d", 4, 2, 32), ("2d", 3, 1, 32), ("Transpose2d", 4, 2, 32), ("Transpose2d", 4, 2, 3)]


def test_cae_at_256_adds_bergmanns_extra_stage_on_each_side():
    net = L2CAE(L2CAEConfig(image_size=256, latent_dim=500))
    enc = [(c.in_channels, c.kernel_size[0], c.stride[0], c.out_channels) for c in net.encoder
           if isinstance(c, torch.nn.Conv2d)]
    assert enc[:4] == [(3, 4, 2, 32), (32, 4, 2, 32), (32, 4, 2, 32), (32, 3, 1, 32)]  # three 4x4 s2 32, then 3x3
    dec = [(c.kernel_size[0], c.stride[0], c.out_channels) for c in net.decoder if isinstance(c, torch.nn.ConvTranspose2d)]
    assert dec[-3:] == [(4, 2, 32), (4, 2, 32), (4, 2, 3)]
    assert net.encode(torch.rand(1, 3, 256, 256)).shape == (1, 500, 1, 1)


def test_cae_bottleneck_plan_and_size_check():
    assert bottleneck_plan(128) == (0, 8)
    assert bottleneck_plan(256) == (1, 8)
    assert bottleneck_plan(224) == (1, 7)
    with pytest.raises(ValueError, match="multiple of 16"):
        bottleneck_plan(100)


def test_unknown_preset_or_field_is_a_clear_error():
    with pytest.raises(ValueError, match="preset"):
        create_model("anovit", "huge")
    with pytest.raises(ValueError, match="no field"):
        create_model("cae", "cpu-tiny", depth=3)


def test_pretrained_offline_fails_fast_with_a_way_forward(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(OfflineError, match="--no-pretrained") as err:
        AnoViT(AnoViTConfig(pretrained=True))
    assert "--encoder-weights" in str(err.value)


def test_local_encoder_weights_are_loaded(tmp_path):
    source = AnoViT(AnoViTConfig(image_size=128))
    path = tmp_path / "vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in source.encoder.state_dict().items()}, str(path))
    net = AnoViT(AnoViTConfig(image_size=128, encoder_weights=str(path)))
    assert torch.equal(net.encoder.blocks[3].attn.qkv.weight, source.encoder.blocks[3].attn.qkv.weight)
