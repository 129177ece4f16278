"""`python app.py`: its flags, building the app they describe, and the offline --share check."""

import socket
import sys
from pathlib import Path

import gradio as gr
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import app  # noqa: E402  (the root script, imported as a module)


def test_flags_default_to_the_embedded_data_and_offline_model():
    args = app.parse_args([])
    assert (args.data, args.model, args.weights, args.share) == (
        "shapes",
        "efficientnet_lite0_imagenet",
        "pretrained",
        False,
    )


def test_a_timm_name_with_random_weights_builds_offline():
    demo, options = app.build_app(
        app.parse_args(["--data", "mock", "--model", "test_efficientnet", "--weights", "random"])
    )
    assert isinstance(demo, gr.Blocks) and "max_file_size" in options
    assert "test_efficientnet (random weights, 160 px)" in demo.explorer_workspace.describe()


def test_share_check_says_why_offline(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    reason = app.share_unavailable_reason(timeout_s=0.1)
    assert reason is not None and "api.gradio.app" in reason and "offline" in reason


def test_bad_data_flag_is_one_line_and_a_non_zero_exit(capsys):
    with pytest.raises(SystemExit) as exit_info:
        app.main(["--data", "no/such/folder"])
    assert str(exit_info.value).startswith("error: Data source 'no/such/folder'")


def test_public_mode_is_chosen_by_flag_share_or_spaces(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    demo, _ = app.build_app(
        app.parse_args(["--data", "mock", "--model", "test_efficientnet", "--weights", "random", "--public"])
    )
    policy = demo.explorer_workspace.policy
    assert policy.public and policy.max_model_params == 30_000_000
    assert app.parse_args(["--max-model-params", "5e6"]).max_model_params == 5e6


def test_the_start_up_page_answers_while_the_app_builds_then_hands_over(tmp_path):
    """`python app.py` serves a progress page during the build (no "connection refused"), then the app itself."""
    import os
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from tiny_workspace import free_port

    from explorer.ui.starting import MARK_HEADER

    port = free_port()
    env = {**os.environ, "EXPLORER_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "app.py", "--data", "mock", "--model", "test_efficientnet", "--weights", "random"]
    app_process = subprocess.Popen(
        [*command, "--port", str(port)], cwd=Path(__file__).resolve().parents[1], env=env, stdout=subprocess.DEVNULL
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and (not seen or seen[-1] != "app"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5):
                    seen.append("app")  # 200 without the start-up mark
            except urllib.error.HTTPError as error:  # the start-up page answers 503 with its mark
                seen.append("start-up page" if error.headers.get(MARK_HEADER) == "1" else f"http {error.code}")
            except OSError:
                seen.append("no answer")  # before the page is up, and while the app takes the port over
            time.sleep(0.2)
    finally:
        app_process.terminate()
        app_process.wait(timeout=30)
    assert "start-up page" in seen and seen[-1] == "app", seen[-5:]
    assert not any(kind.startswith("http") for kind in seen), seen
