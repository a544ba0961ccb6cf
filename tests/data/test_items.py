"""anovit.data.items.collate: the scoring's collate_fn gives what torch's default_collate gives."""

import torch
from torch.utils.data import DataLoader, default_collate

from anovit.data.items import ImageBatch, collate


def _items(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"image": torch.rand(3, 8, 6, generator=g).permute(0, 2, 1),  # strided, as a transform may leave it
             "mask": (torch.rand(1, 6, 8, generator=g) > 0.7).float(), "label": i % 2,
             "defect_type": "good" if i % 2 == 0 else "scratch", "path": f"img{i}.png"} for i in range(n)]


def test_collate_equals_default_collate():
    items = _items(5)
    ours, torchs = collate(items), default_collate(items)
    assert ours.keys() == torchs.keys()
    for key, value in torchs.items():
        if isinstance(value, torch.Tensor):
            assert ours[key].dtype == value.dtype and ours[key].is_contiguous()
            torch.testing.assert_close(ours[key], value, rtol=0, atol=0)
        else:
            assert ours[key] == value
    batch = ImageBatch.from_collated(ours)
    assert batch.gt_label.tolist() == [0, 1, 0, 1, 0] and batch.gt_mask.dtype == torch.bool


def test_collate_as_a_dataloaders_collate_fn_keeps_batches_in_order():
    items = _items(7)
    batches = list(DataLoader(items, batch_size=3, collate_fn=collate))
    assert [b["path"] for b in batches] == [["img0.png", "img1.png", "img2.png"], ["img3.png", "img4.png", "img5.png"],
                                            ["img6.png"]]
    torch.testing.assert_close(torch.cat([b["image"] for b in batches]), torch.stack([i["image"] for i in items]))
