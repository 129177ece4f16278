"""Start the metric-learning explorer: `python app.py [--data ...] [--model ...] [--share]`.

Builds the default workspace (data + extractor, embeddings and metrics computed now, progress on the console)
and serves the Gradio app. `demo` is the module-level app Hugging Face Spaces (and `gradio app.py`) look for; it
is built on first access with the defaults, so importing this module stays cheap.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

SHARE_SERVER = ("api.gradio.app", 443)
UMAP_PRECOMPUTE_DELAY_S = 5.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from explorer.const import DEFAULT_DATA, DEFAULT_MAX_MODEL_PARAMS, DEFAULT_MODEL  # cheap: no torch yet

    parser = argparse.ArgumentParser(description="Explore deep metric learning on images in the browser.")
    parser.add_argument(
        "--data", default=DEFAULT_DATA, help="built-in name (shapes, mock, digits), an OML CSV, or an image folder"
    )
    parser.add_argument(
        "--dataset-root", default=None, help="folder the CSV's paths are relative to (default: the CSV's folder)"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="preset or timm name of the extractor")
    parser.add_argument(
        "--weights",
        choices=("pretrained", "random"),
        default="pretrained",
        help="weights of --model: its pretrained ones (presets, timm 'arch.tag') or a random initialisation",
    )
    parser.add_argument("--checkpoint", default=None, help="extractor checkpoint (.safetensors) to start from")
    parser.add_argument(
        "--embeddings",
        default=None,
        help="explore embeddings computed elsewhere for --data (.npy row-aligned, or parquet with an 'embedding' "
        "column); no model is loaded",
    )
    parser.add_argument(
        "--share", action="store_true", help="also serve through a public Gradio share link (implies --public)"
    )
    parser.add_argument(
        "--public",
        action="store_true",
        help="public mode (automatic on Hugging Face Spaces and with --share): no server paths, bounded models",
    )
    parser.add_argument(
        "--max-model-params",
        type=float,
        default=DEFAULT_MAX_MODEL_PARAMS,
        help=f"public mode's model budget in parameters (default {DEFAULT_MAX_MODEL_PARAMS:.0e})",
    )
    parser.add_argument(
        "--host", default=None, help="interface to listen on (default 127.0.0.1, or $GRADIO_SERVER_NAME as on Spaces)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port to listen on (default 7860, or $GRADIO_SERVER_PORT)"
    )
    return parser.parse_args(argv)


def _console_progress(fraction: float, message: str) -> None:
    print(f"[{fraction:4.0%}] {message}", flush=True)


def _address(args: argparse.Namespace) -> tuple[str, int]:
    """Where to listen, as Gradio would choose it (flags, then Gradio's variables, then its defaults)."""
    host = args.host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    return host, args.port or int(os.environ.get("GRADIO_SERVER_PORT", "7860"))


def build_app(args: argparse.Namespace, progress: Callable[[float, str], None] = _console_progress):
    """(demo, launch options) on the workspace the flags describe."""
    from explorer.ui.app import build_demo, launch_options
    from explorer.workspace import Workspace
    from explorer.workspace.files import sweep_stale_files
    from explorer.workspace.policy import ServingPolicy
    from explorer.workspace.workspace import APP_CACHE_ROOT

    policy = ServingPolicy.choose(args.public, args.share, int(args.max_model_params))
    removed = sweep_stale_files(APP_CACHE_ROOT)
    if removed:
        print(f"Removed {removed} stale session folder(s) / temp file(s) of an earlier run.", flush=True)
    workspace = Workspace.build(
        args.data,
        args.dataset_root,
        args.model,
        args.checkpoint,
        weights=args.weights,
        progress=progress,
        policy=policy,
        embeddings=args.embeddings,
    )
    return build_demo(workspace), launch_options(policy)


def _precompute_umap(demo) -> None:
    """Compute the default workspace's UMAP in the background (numba compiles on first use), so the first user
    who picks UMAP gets it at once; PCA is already there. It starts `UMAP_PRECOMPUTE_DELAY_S` after the app is
    ready, so that a page opened at once (the start-up page reloads into the app) loads without sharing the CPU
    with the compilation."""
    workspace = demo.explorer_workspace
    timer = threading.Timer(UMAP_PRECOMPUTE_DELAY_S, workspace.projection_coords, args=("umap",))
    timer.name, timer.daemon = "umap-precompute", True
    timer.start()


def share_unavailable_reason(timeout_s: float = 3.0) -> str | None:
    """Why a share link cannot be made from here (None when Gradio's share server is reachable)."""
    try:
        socket.create_connection(SHARE_SERVER, timeout=timeout_s).close()
    except OSError as error:
        return (
            f"cannot reach {SHARE_SERVER[0]}:{SHARE_SERVER[1]} ({error.strerror or error}); this machine seems offline"
        )
    return None


def main(argv: list[str] | None = None) -> None:
    """Serve the start-up page at once, build the workspace (its progress on the page and the console), then
    hand the port to the app."""
    from explorer.ui.starting import StartupPage, StartupStatus

    args = parse_args(argv)
    started = time.perf_counter()
    host, port = _address(args)
    status = StartupStatus()
    try:
        startup_page = StartupPage(host, port, status)
    except OSError as error:
        sys.exit(f"error: {error}")
    print(f"Starting on http://{host}:{port} (the page shows the progress until the app is ready)", flush=True)

    def report(fraction: float, message: str) -> None:
        status.report(fraction, message)
        _console_progress(fraction, message)

    try:
        demo, options = build_app(args, report)
    except ValueError as error:  # bad flags or data: one line, no traceback
        status.error = str(error)
        startup_page.close()
        sys.exit(f"error: {error}")
    startup_page.close()
    share = args.share
    if share and (reason := share_unavailable_reason()):
        print(f"No share link: {reason}. Serving locally only.", flush=True)
        share = False
    demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, quiet=True, **options)
    _precompute_umap(demo)
    mode = "public" if demo.explorer_workspace.policy.public else "local"
    print(f"Ready in {time.perf_counter() - started:.1f} s ({mode} mode): {demo.local_url}", flush=True)
    if demo.share_url:
        print(f"Public share link: {demo.share_url}", flush=True)
    if share and not demo.share_url:
        print("No share link: Gradio could not open the tunnel (see above). Serving locally only.", flush=True)
    demo.block_thread()


def __getattr__(name: str):
    """Build `demo` lazily (defaults) when a host such as Hugging Face Spaces imports this module for it."""
    if name == "demo":
        demo, _ = build_app(parse_args([]))
        globals()["demo"] = demo
        return demo
    raise AttributeError(name)


if __name__ == "__main__":
    main()
