"""The app in public mode, attacked through its API as a visitor would (gradio_client against a live server)."""

from __future__ import annotations

import dataclasses
import threading
import time
import zlib
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from tiny_workspace import build_tiny_workspace, serve_app

from explorer.workspace.policy import ServingPolicy

N_CLIENTS = 8


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("public-app"))
    workspace.policy = ServingPolicy.for_public()
    return workspace


@pytest.fixture(scope="module")
def url(workspace):
    with serve_app(workspace) as served:
        yield served


@pytest.fixture(scope="module")
def client(url):
    return Client(url, verbose=False)


def _message(client: Client, *args, api_name: str) -> str:
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    return str(info.value)


def _server_folders(workspace) -> list[str]:
    return [str(workspace.dataset.root), str(workspace.cache_dir), "/tmp/", str(Path.home())]


def test_load_data_and_set_model_are_named_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/load_data", "/set_model"} <= set(endpoints)


def test_server_paths_are_refused_and_the_message_shows_no_folder(client, workspace):
    for path in (str(workspace.dataset.root), "/tmp/gradio", "/etc"):
        message = _message(client, path, "", api_name="/load_data")
        assert "public mode: server paths cannot be loaded" in message
        assert not any(folder in message for folder in _server_folders(workspace))


def test_a_model_over_the_budget_is_refused(client):
    message = _message(client, "vit_huge_patch14_224", "random", api_name="/set_model")
    assert "above this app's budget" in message


def test_concurrent_identical_requests_all_succeed(url):
    clients = [Client(url, verbose=False) for _ in range(N_CLIENTS)]
    results: list[str | BaseException] = []

    def ask(client: Client) -> None:
        try:
            for _ in range(3):
                image, _table = client.predict("OVERALL/map/5", 3, 3, api_name="/worst_queries")
                Image.open(image).load()  # the whole file arrived
            results.append("ok")
        except BaseException as error:  # collected: every failure is reported below
            results.append(error)

    threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert results == ["ok"] * N_CLIENTS


def _grey_png(path: Path, side: int) -> Path:
    """A valid grey PNG of side x side pixels in a few hundred KB (all zero rows compress to almost nothing)."""
    raw = zlib.compress(b"".join(b"\x00" + bytes(side) for _ in range(side)), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
    return path


def test_an_oversized_grey_png_is_refused_from_its_header(client, tmp_path):
    bomb = _grey_png(tmp_path / "huge.png", 12_000)
    assert bomb.stat().st_size < 1_000_000
    message = _message(client, handle_file(str(bomb)), 3, api_name="/search")
    assert "huge.png is too large (decompression-bomb guard)" in message


def test_a_non_image_upload_gets_our_message(client, workspace, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("these are not pixels")
    message = _message(client, handle_file(str(fake)), 3, api_name="/search")
    assert "Cannot read image notes.png" in message
    assert not any(folder in message for folder in _server_folders(workspace))


def test_an_api_session_left_idle_is_closed_and_told_to_reload(tmp_path):
    """A gradio_client session never unloads a page: the server closes it once idle (here after 1 s)."""
    workspace = build_tiny_workspace(tmp_path)
    workspace.policy = dataclasses.replace(ServingPolicy.for_public(), session_idle_s=1.0)
    with serve_app(workspace) as served:
        client = Client(served, verbose=False)
        assert client.predict(api_name="/metrics")["data"]
        time.sleep(3)
        assert "reload the page" in _message(client, api_name="/metrics")


def test_the_page_config_names_no_folder_of_the_app_or_its_environment(url, workspace):
    import sys
    import urllib.request

    with urllib.request.urlopen(f"{url.rstrip('/')}/config") as response:
        config = response.read().decode()
    folders = [sys.prefix, str(Path(__file__).resolve().parents[1]), str(Path.home()), str(workspace.cache_dir)]
    assert "plotly" in config and not [folder for folder in folders if folder in config]
