"""Pretrained weights from the Hugging Face hub, failing in a second with one clear message when offline.

Left to itself, a download without network retries for ~47 s before an opaque error. Here the local HF cache is
tried first, then offline mode and a quick connection probe decide before any download starts.
"""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse

import huggingface_hub
import timm
from huggingface_hub import constants as hf_constants
from torch import nn

from explorer.errors import InputError
from explorer.models.registry import OFFLINE_PRESET, create_backbone

HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm looks for in a hub repo
PROBE_TIMEOUT_S = 3.0
_TRUE_VALUES = {"1", "on", "yes", "true"}


class PretrainedWeightsUnavailable(InputError):
    """Pretrained weights could not be found locally nor downloaded; the message gives the ways to use them offline."""


def hub_repo_of(timm_name: str) -> str:
    """timm name with tag ('vit_small_patch16_224.dino') -> its hub repository ('timm/vit_small_patch16_224.dino')."""
    cfg = timm.models.get_pretrained_cfg(timm_name)
    if cfg is None or not cfg.hf_hub_id:
        raise InputError(f"timm has no hub weights for {timm_name!r}; see timm.list_pretrained().")
    return cfg.hf_hub_id


def cached_weights_file(repo_id: str, cache_dir: str | None = None) -> str | None:
    """Path of the repo's weight file in the local HF cache, or None; never touches the network."""
    for filename in HUB_WEIGHT_FILES:
        found = huggingface_hub.try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(found, str):
            return found
    return None


def hub_offline_mode() -> bool:
    """True when HF_HUB_OFFLINE is set now or was set when huggingface_hub was imported."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE_VALUES or hf_constants.HF_HUB_OFFLINE


def hub_reachable(timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Open one TCP connection to the hub (or the configured HTTPS proxy), bounded by `timeout_s` including DNS."""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    target = urlparse(proxy or hf_constants.ENDPOINT)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    outcome: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            outcome.append(True)
        except OSError:
            outcome.append(False)

    probe = threading.Thread(target=connect, daemon=True)  # daemon: a hung DNS lookup cannot block exit
    probe.start()
    probe.join(timeout_s)
    return bool(outcome and outcome[0])


def unavailable_message(preset_name: str, timm_name: str, repo_id: str, tried: str) -> str:
    return (
        f"Pretrained weights for preset {preset_name!r} (timm {timm_name!r}) are not available: {tried}. "
        f"To use them offline: (1) on a machine with internet run "
        f"`python -c \"import timm; timm.create_model('{timm_name}', pretrained=True)\"` and copy the folder "
        f"models--{repo_id.replace('/', '--')} of ~/.cache/huggingface/hub (or $HF_HUB_CACHE) here; or "
        f"(2) download model.safetensors from https://huggingface.co/{repo_id} and load it with "
        f"ViTExtractor.from_pretrained_file({preset_name!r}, 'path/to/model.safetensors'); or "
        f"(3) use the offline preset {OFFLINE_PRESET!r}."
    )


def load_hub_backbone(preset_name: str, timm_name: str, cache_dir: str | None = None) -> nn.Module:
    """Backbone with hub weights: from the local cache if there, else downloaded once the hub answers."""
    repo_id = hub_repo_of(timm_name)
    timm_arch = timm_name.split(".", 1)[0]
    local = cached_weights_file(repo_id, cache_dir)
    if local is not None:
        return create_backbone(timm_arch, pretrained_file=local)
    cache_note = f"not in the local HF cache ({cache_dir or hf_constants.HF_HUB_CACHE})"
    if hub_offline_mode():
        raise PretrainedWeightsUnavailable(
            unavailable_message(preset_name, timm_name, repo_id, f"{cache_note} and HF_HUB_OFFLINE is set")
        )
    if not hub_reachable():
        raise PretrainedWeightsUnavailable(
            unavailable_message(
                preset_name, timm_name, repo_id, f"{cache_note} and {hf_constants.ENDPOINT} cannot be reached"
            )
        )
    try:
        path = huggingface_hub.hf_hub_download(repo_id, HUB_WEIGHT_FILES[0], cache_dir=cache_dir)
    except Exception as error:  # any download failure gets the same actionable message
        raise PretrainedWeightsUnavailable(
            unavailable_message(preset_name, timm_name, repo_id, f"{cache_note} and the download failed ({error})")
        ) from error
    return create_backbone(timm_arch, pretrained_file=path)
