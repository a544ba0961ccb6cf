"""Creation of the timm ViT encoder, with ImageNet weights from the Hub, a local file, or none."""

from __future__ import annotations

from pathlib import Path

import timm
import torch.nn as nn

from ..utils.errors import OfflineError
from ..utils.network import hub_reachable



def _hub_weights_file(name: str) -> str:
    """Path of the encoder's ImageNet weights in the local Hub cache, downloading them if allowed."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.constants import SAFETENSORS_SINGLE_FILE as WEIGHTS_FILENAME  # timm's weights on the Hub

    cfg = timm.create_model(name, pretrained=False).pretrained_cfg
    repo_id = cfg.get("hf_hub_id")
    if not repo_id:
        raise OfflineError(f"timm model {name!r} has no Hugging Face Hub weights; pass a local weights file.")
    cached = try_to_load_from_cache(repo_id, WEIGHTS_FILENAME)
    if isinstance(cached, str):
        return cached
    hint = (
        f"Could not get the ImageNet weights of {name} ({repo_id}) from the Hugging Face Hub"
        " and they are not in the local cache; train without them (pretrained=False, CLI --no-pretrained)"
        " or give a local weights file (encoder_weights=PATH, CLI --encoder-weights PATH)."
    )
    if not hub_reachable():
        raise OfflineError(hint)
    try:
        return hf_hub_download(repo_id, WEIGHTS_FILENAME, etag_timeout=5)
    except Exception as err:  # network errors come in many types; all mean the same to the user
        raise OfflineError(f"{hint} ({type(err).__name__})") from err


def create_encoder(
    name: str, image_size: int, pretrained: bool = False, weights_file: str | None = None
) -> nn.Module:
    """A timm ViT without classifier head at ``image_size`` px.

    ``weights_file`` (safetensors or a timm checkpoint, loaded without unpickling code) takes
    precedence over ``pretrained``, which fetches timm's ImageNet weights through the Hub cache.
    Position embeddings are resized to ``image_size`` by timm.
    """
    if weights_file is not None:
        path = Path(weights_file)
        if not path.is_file():
            raise FileNotFoundError(f"encoder weights file {path} does not exist")
    elif pretrained:
        weights_file = _hub_weights_file(name)
    try:
        return timm.create_model(
            name,
            pretrained=weights_file is not None,
            pretrained_cfg_overlay=dict(file=str(weights_file)) if weights_file else None,
            img_size=image_size,
            num_classes=0,
        )
    except RuntimeError as err:
        if weights_file is None:
            raise
        raise OfflineError(f"encoder weights file {weights_file} does not fit timm model {name}: {err}") from err
