"""Test-wide settings: never touch the network, draw off-screen, keep caches out of the home folder."""

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("EXPLORER_CACHE", tempfile.mkdtemp(prefix="explorer-test-cache-"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
