"""A quick reachability check so that offline machines fail in seconds instead of retrying."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse


def hub_offline_forced() -> bool:
    """True when the user asked huggingface_hub to stay offline (HF_HUB_OFFLINE)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in {"1", "true", "yes", "on"}


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``url``'s host and port opens within ``timeout`` seconds."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub endpoint can be reached (and offline mode is not forced)."""
    from huggingface_hub import constants

    return not hub_offline_forced() and reachable(constants.ENDPOINT, timeout)
