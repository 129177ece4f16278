"""A tiny workspace for the app tests: 8 generated classes x 4 images at 64 px and a random-init test model.

Small enough that building it (embeddings + metrics) takes a few seconds on two CPU cores.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from explorer.data.shapes import CSV_NAME, generate_shapes_dataset  # noqa: E402
from explorer.ui.app import build_demo, launch_options  # noqa: E402
from explorer.workspace import Workspace  # noqa: E402

TINY_MODEL = "test_efficientnet"
TINY_IMAGE_SIZE = 64
TINY_CLASSES, TINY_IMAGES_PER_CLASS = 8, 4


def build_tiny_workspace(root: Path) -> Workspace:
    """Generated shapes in `root/data` (4 train + 4 validation classes: 16 queries, each also gallery)."""
    torch.manual_seed(0)  # random-init weights, the same in every run
    generate_shapes_dataset(
        root / "data", n_classes=TINY_CLASSES, images_per_class=TINY_IMAGES_PER_CLASS, image_size=64
    )
    return Workspace.build(
        str(root / "data" / CSV_NAME),
        model=TINY_MODEL,
        weights="random",
        image_size=TINY_IMAGE_SIZE,
        cache_dir=root / "app-cache",
    )


def free_port() -> int:
    """A port nobody listens on right now, for a test server on localhost."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve_app(workspace: Workspace) -> Iterator[str]:
    """The app on `workspace`, served on a free localhost port with the real launch options; yields its URL."""
    demo = build_demo(workspace)
    demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(),
    )
    try:
        yield demo.local_url
    finally:
        demo.close()
