"""Batch augmentation: the affine matrices move pixels where the docstring says, flips and whole-pixel
shifts reproduce pixels exactly, each image gets its own draw, and switched-off parts do nothing."""

import math

import pytest
import torch
import torch.nn.functional as F

from anovit.data.augment import AugmentConfig, BatchAugment, affine_theta, build_augmentation


def _apply(images, angle=0.0, scale=1.0, shift=(0.0, 0.0), flip=(False, False)):
    b, _, h, w = images.shape
    theta = affine_theta(torch.full((b,), angle), torch.full((b,), scale), torch.tensor([shift] * b),
                         torch.tensor([flip] * b), h, w)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", align_corners=False)


def _dot(h, w, y, x):
    image = torch.zeros(1, 1, h, w)
    image[0, 0, y, x] = 1.0
    return image


def _where(image):
    y, x = divmod(int(image.flatten().argmax()), image.shape[-1])
    return y, x


def test_identity_parameters_reproduce_the_image():
    images = torch.rand(2, 3, 12, 16)
    assert torch.equal(_apply(images), images)


def test_flips_mirror_exactly():
    images = torch.rand(1, 3, 10, 14)
    assert torch.equal(_apply(images, flip=(True, False)), images.flip(-1))
    assert torch.equal(_apply(images, flip=(False, True)), images.flip(-2))
    assert torch.equal(_apply(images, flip=(True, True)), images.flip(-1).flip(-2))


def test_whole_pixel_shift_moves_right_and_down_with_zero_fill():
    images = torch.rand(1, 1, 8, 10) + 0.1
    out = _apply(images, shift=(2.0, 1.0))  # 2 px right, 1 px down
    assert torch.equal(out[..., 1:, 2:], images[..., :-1, :-2])
    assert (out[..., :1, :] == 0).all() and (out[..., :, :2] == 0).all()


def test_rotation_is_counter_clockwise_on_screen_on_a_non_square_image():
    # 20 rows x 30 columns, centre at pixel (9.5, 14.5): a dot 5 px right of centre goes 5 px up.
    out = _apply(_dot(20, 30, 9, 19), angle=math.pi / 2)
    assert _where(out) in {(4, 14), (4, 15), (5, 14), (5, 15)}


def test_scale_moves_a_dot_away_from_the_centre():
    out = _apply(_dot(41, 41, 20, 30), scale=1.5)  # 10 px right of the centre pixel -> 15 px
    assert _where(out) == (20, 35)


def test_batch_augment_draws_per_image_and_keeps_content():
    torch.manual_seed(0)
    images = torch.rand(1, 3, 16, 16).expand(64, -1, -1, -1).contiguous()
    out = BatchAugment(AugmentConfig(affine=False, hflip=True, vflip=False))(images)
    mirrored = torch.tensor([torch.equal(o, images[0].flip(-1)) for o in out])
    same = torch.tensor([torch.equal(o, images[0]) for o in out])
    assert (mirrored ^ same).all()  # every image is either the input or its mirror
    assert 10 < int(mirrored.sum()) < 54  # and the coin is tossed per image


def test_affine_augmentation_is_small_and_random():
    torch.manual_seed(1)
    disk = ((torch.arange(64) - 31.5).pow(2)[:, None] + (torch.arange(64) - 31.5).pow(2)[None, :] < 20**2).float()
    images = disk.expand(8, 3, 64, 64).contiguous()
    out = BatchAugment(AugmentConfig(hflip=False, vflip=False))(images)
    changed = (out != images).float().mean(dim=(1, 2, 3))
    assert (changed < 0.15).all()  # at most 5 degrees, 3% shift, 5% scale: the disk stays nearly in place
    assert len({round(float(c), 6) for c in changed}) > 1  # not one draw for the whole batch


def test_switched_off_parts_do_nothing():
    assert build_augmentation(AugmentConfig(affine=False, hflip=False, vflip=False)) is None
    images = torch.rand(4, 3, 8, 8)
    no_flip = BatchAugment(AugmentConfig(affine=True, degrees=0.0, translate=0.0, scale=(1.0, 1.0),
                                         hflip=False, vflip=False))
    assert torch.equal(no_flip(images), images)


def test_batch_augment_refuses_a_single_image():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        BatchAugment(AugmentConfig())(torch.rand(3, 8, 8))
