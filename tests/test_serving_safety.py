"""Safe to share: what a visitor of a public app cannot do, and what every session cleans up after itself.

Each test stands for an attack or failure found against the app: reading server files, escaping an upload,
exhausting the machine with a model, leaking disk, breaking the session with a failed load.
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tiny_workspace import TINY_MODEL, build_tiny_workspace

from explorer import const as C
from explorer.errors import InputError
from explorer.workspace import WorkspaceSession
from explorer.workspace.files import SessionFiles, sessions_folder, sweep_stale_files
from explorer.workspace.policy import ServingPolicy
from explorer.workspace.session import Cancelled, close_idle_sessions


@pytest.fixture(scope="module")
def public(tmp_path_factory):
    """A shared default workspace served in public mode."""
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("public"))
    workspace.policy = ServingPolicy.for_public()
    WorkspaceSession(workspace)
    return workspace


@pytest.fixture
def session(public):
    return WorkspaceSession(public)


def _zip_csv(archive: Path, csv_text: str, images: dict[str, Path]) -> Path:
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data.csv", csv_text)
        for name, source in images.items():
            zipped.write(source, name)
    return archive


def _oml_csv(paths: list[str]) -> str:
    rows = ["label,path,split,is_query,is_gallery"]
    rows += [f"{i % 2},{p},validation,True,True" for i, p in enumerate(paths)]
    return "\n".join(rows) + "\n"


# -- modes ----------------------------------------------------------------------------------------------------


def test_public_mode_refuses_server_paths_but_loads_built_in_data(session, public, tmp_path):
    for path in (str(public.dataset.root), "/tmp/gradio", str(tmp_path)):
        with pytest.raises(InputError, match="public mode: server paths cannot be loaded"):
            session.load_data(path)
    assert session.workspace.dataset.name == public.dataset.name


def test_mode_is_public_on_spaces_with_a_share_link_or_when_asked(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not ServingPolicy.choose(public=False, share=False).public
    assert ServingPolicy.choose(public=False, share=True).public
    assert ServingPolicy.choose(public=True, share=False).public
    monkeypatch.setenv("SPACE_ID", "someone/explorer")
    assert ServingPolicy.choose(public=False, share=False).public
    assert "Public mode" in ServingPolicy.for_public().describe()
    assert "Local mode" in ServingPolicy().describe()


def test_a_model_over_the_budget_is_refused_before_it_is_built(session):
    started = time.perf_counter()
    with pytest.raises(InputError, match=r"631 M parameters, above this app's budget of 30 M"):
        session.set_model("vit_huge_patch14_224", "random")
    assert time.perf_counter() - started < 20  # counted on the meta device, never allocated
    assert session.workspace.extractor.choice.name == TINY_MODEL


def test_a_model_fed_images_over_the_size_limit_is_refused_before_it_is_built(session):
    with pytest.raises(InputError, match=r"takes 518 px images, above this app's limit of 384 px: .*vits16_dino"):
        session.set_model("vit_small_patch14_dinov2", "random")
    assert session.workspace.extractor.choice.name == TINY_MODEL


def test_model_names_that_look_like_paths_get_one_message_whether_or_not_the_file_exists(session, public, tmp_path):
    existing = tmp_path / "weights.safetensors"
    existing.write_bytes(b"not really weights")
    names = [str(existing), str(tmp_path / "missing.safetensors"), "../../etc/passwd", "~/model.pt", "x.ckpt"]
    messages = set()
    for name in names:
        with pytest.raises(InputError) as refused:
            session.set_model(name, "pretrained")
        messages.add(str(refused.value))
    assert len(messages) == 1 and "not a file path" in messages.pop()


def test_public_mode_bounds_the_training_image_size(session):
    from explorer.training.train import TrainingSettings

    with pytest.raises(InputError, match="image size 1024 is above this app's limit"):
        list(session.train(TrainingSettings(epochs=1, n_labels=2, n_instances=2, image_size=1024)))


# -- uploads stay inside the upload ---------------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["absolute", "dotdot"])
def test_csv_paths_of_an_upload_cannot_leave_it_and_never_tell_what_exists(session, public, tmp_path, escape):
    inside = {f"img{i}.png": Path(public.items.paths[i]) for i in range(3)}
    outside = public.items.paths[5] if escape == "absolute" else "../../secret.png"
    missing = "/no/such/file.png" if escape == "absolute" else "../../no_such_file.png"
    messages = []
    for bad in (outside, missing):  # an existing and a missing file must read alike
        archive = _zip_csv(tmp_path / f"{escape}.zip", _oml_csv([*inside, bad]), inside)
        with pytest.raises(InputError, match=r"rows \(0-based\) 3") as info:
            session.load_uploaded_zip(archive)
        messages.append(str(info.value).replace(bad, "<path>"))
    assert messages[0] == messages[1]
    assert session.workspace.dataset.name == public.dataset.name


def test_an_upload_over_the_image_cap_is_refused(session, public, tmp_path, monkeypatch):
    monkeypatch.setattr(public, "policy", ServingPolicy(public=True, max_upload_images=2))
    images = {f"class_{i % 2}/{i}.png": Path(public.items.paths[i]) for i in range(4)}
    archive = tmp_path / "four.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, source in images.items():
            zipped.write(source, name)
    with pytest.raises(InputError, match="holds 4 images; this app accepts at most 2"):
        session.load_uploaded_zip(archive)
    assert not any((session.files.root / "uploads").iterdir())


def test_a_csv_over_the_image_cap_is_refused_before_its_rows_are_checked(session, public, tmp_path, monkeypatch):
    monkeypatch.setattr(public, "policy", ServingPolicy(public=True, max_upload_images=100))
    checked = []
    monkeypatch.setattr("explorer.data.loading.validate_dataframe", lambda *args, **kwargs: checked.append(1))
    archive = _zip_csv(tmp_path / "huge.zip", _oml_csv([f"missing/{i}.png" for i in range(5000)]), {})
    with pytest.raises(InputError, match="data.csv has more than 100 rows; this app accepts at most 100 images"):
        session.load_uploaded_zip(archive)
    assert checked == []  # refused on the row count alone


def test_zip_folders_count_as_entries_and_deep_nesting_is_refused_by_name(session, public, tmp_path, monkeypatch):
    monkeypatch.setattr(public, "policy", ServingPolicy(public=True, max_upload_images=2))  # 102 entries at most
    folders = tmp_path / "folders.zip"
    with zipfile.ZipFile(folders, "w") as zipped:
        for i in range(150):
            zipped.writestr(f"empty_{i}/", "")
    with pytest.raises(InputError, match="folders.zip holds 150 files and folders; at most 102"):
        session.load_uploaded_zip(folders)
    deep = tmp_path / "deep.zip"
    with zipfile.ZipFile(deep, "w") as zipped:
        zipped.writestr("/".join(["d"] * 40) + "/x.png", b"")
    with pytest.raises(InputError, match="deep.zip nests folders 41 levels deep; at most 16"):
        session.load_uploaded_zip(deep)


def test_upload_messages_and_the_dataset_name_the_visitors_zip(session, public, tmp_path):
    flat = tmp_path / "my birds.zip"
    with zipfile.ZipFile(flat, "w") as zipped:
        zipped.write(public.items.paths[0], "a.png")
    with pytest.raises(InputError, match="with images in my birds.zip;"):
        session.load_uploaded_zip(flat)
    good = tmp_path / "my birds.zip"
    with zipfile.ZipFile(good, "w") as zipped:
        for i in range(8):
            zipped.write(public.items.paths[i], f"class_{i % 2}/{i}.png")
    session.load_uploaded_zip(good)
    assert session.workspace.dataset.name == "my birds"


# -- atomic changes -------------------------------------------------------------------------------------------


def test_a_failed_load_keeps_the_previous_state_fully_working(session, public, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")  # passes validation (the file exists), fails when embedded
    images = {"a.png": Path(public.items.paths[0]), "b.png": Path(public.items.paths[1]), "c.png": broken}
    archive = _zip_csv(tmp_path / "broken.zip", _oml_csv(list(images)), images)
    first = [int(public.items.query_items[0])]
    before = session.workspace.query_grid(first, 3)
    with pytest.raises(InputError, match="c.png"):
        session.load_uploaded_zip(archive)
    workspace = session.workspace
    assert workspace.dataset.name == public.dataset.name
    assert np.array_equal(np.asarray(workspace.query_grid(first, 3)), np.asarray(before))
    assert len(workspace.metrics_table()) > 0 and workspace.projection("pca", "label") is not None
    assert not any((session.files.root / "uploads").iterdir())  # the failed upload's folder is gone


def test_cancel_during_a_load_keeps_the_previous_state(session, public):
    reports = []

    def press_cancel_on_first_report(fraction: float, message: str) -> None:
        reports.append(message)
        session.cancel()

    with pytest.raises(Cancelled, match="keeps the data and model it had"):
        session.set_model("resnet18", "random", progress=press_cancel_on_first_report)
    assert session.workspace.extractor.choice.name == TINY_MODEL
    assert reports  # it was cancelled through its progress, after it started


def test_a_session_runs_one_heavy_job_at_a_time(session):
    session._start_job("loading data")
    try:
        with pytest.raises(InputError, match="already loading data: wait for it to finish or press Cancel"):
            session.set_model("resnet18", "random")
        with pytest.raises(InputError, match="already loading data"):  # the page's unqueued check, before queueing
            session.check_free()
    finally:
        session._end_job()
    session.check_free()  # free again


# -- sessions clean up after themselves ----------------------------------------------------------------------


def test_session_files_go_when_the_session_ends(session, public, tmp_path):
    images = {f"class_{i % 2}/{i}.png": Path(public.items.paths[i]) for i in range(4)}
    archive = tmp_path / "four.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, source in images.items():
            zipped.write(source, name)
    session.load_uploaded_zip(archive)
    exported = session.export(["pca"])
    checkpoint = session.save_checkpoint()
    root = session.files.root
    assert all(path.is_relative_to(root) for path in [*exported, checkpoint, session.workspace.dataset.root])
    assert session.files.disk_bytes() > 0
    session.close()
    assert not root.exists()
    with pytest.raises(InputError, match="session has ended .* reload the page"):
        session.files.new_folder("exports")


def test_sessions_no_page_unload_ends_close_when_idle_and_then_say_to_reload(public):
    """API clients and raw HTTP never unload a page: the idle sweep bounds how long their files and memory stay."""
    idle, recent, busy = WorkspaceSession(public), WorkspaceSession(public), WorkspaceSession(public)
    for session in (idle, recent, busy):
        session.save_checkpoint()  # each holds a file
    idle.last_used -= 3600
    busy.last_used -= 3600
    busy._start_job("loading data")  # a running job is never cut off
    try:
        assert close_idle_sessions(public, max_idle_s=1800) == 1
    finally:
        busy._end_job()
    assert not idle.files.root.exists() and recent.files.root.exists() and busy.files.root.exists()
    with pytest.raises(InputError, match="closed after 30 minutes without use .* reload the page"):
        idle.workspace.metrics_table()
    assert ServingPolicy.for_public().session_idle_s == 30 * 60 and ServingPolicy().session_idle_s is None
    recent.close()
    busy.close()


def test_downloads_are_pruned_to_the_newest_few(tmp_path):
    files = SessionFiles(tmp_path)
    folders = [files.new_folder("exports") for _ in range(6)]
    kept = sorted(p for p in (files.root / "exports").iterdir())
    assert len(kept) == 3 and set(kept) == set(folders[-3:])


def test_start_up_sweeps_stale_session_folders_and_temp_files(tmp_path):
    stale_session = sessions_folder(tmp_path) / "abc" / "uploads" / "x"
    stale_session.mkdir(parents=True)
    old_tmp = tmp_path / "embeddings" / ".cache.safetensors.123.tmp"
    old_tmp.parent.mkdir()
    old_tmp.write_bytes(b"half written")
    os.utime(old_tmp, (time.time() - 3600, time.time() - 3600))
    fresh_tmp = tmp_path / "embeddings" / ".other.safetensors.456.tmp"  # another process may be writing it
    fresh_tmp.write_bytes(b"being written")
    assert sweep_stale_files(tmp_path) == 2
    assert not (sessions_folder(tmp_path) / "abc").exists() and not old_tmp.exists() and fresh_tmp.exists()


# -- exports and messages hold no server folder ---------------------------------------------------------------


def test_exports_hold_dataset_relative_paths(session, public):
    files = {path.name: path for path in session.export(["pca"])}
    for name in ("embeddings.parquet", "projection_pca.csv"):
        table = pd.read_parquet(files[name]) if name.endswith("parquet") else pd.read_csv(files[name])
        assert not any(os.path.isabs(p) for p in table[C.PATHS_COLUMN])
        assert str(public.dataset.root) not in files[name].read_bytes().decode("latin-1")


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("Image file not found: /tmp/gradio/abc123/x.jpg", "Image file not found: x.jpg"),
        ("Cannot read CSV /srv/cache/app/sessions/u1/uploads/d/data.csv: bad", "Cannot read CSV data.csv: bad"),
        ("'/etc/passwd' is not an image", "'passwd' is not an image"),
        ("the folder /srv/data/ is empty", "the folder <folder> is empty"),
        ("C:\\Users\\me\\a.png is broken", "a.png is broken"),
        ("~/data/birds/x.jpg.", "x.jpg."),
        (
            "see https://huggingface.co/timm/x; pcf@0.5/1.0 and a/b",
            "see https://huggingface.co/timm/x; pcf@0.5/1.0 and a/b",
        ),
    ],
)
def test_messages_name_files_never_server_folders(message, shown):
    from explorer.errors import without_server_paths

    assert without_server_paths(message) == shown


def test_uploads_share_one_disk_budget_across_sessions(session, public, tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.setattr(public, "policy", dataclasses.replace(ServingPolicy.for_public(), max_sessions_bytes=1000))
    images = {f"class_{i % 2}/{i}.png": Path(public.items.paths[i]) for i in range(4)}
    archive = tmp_path / "four.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, source in images.items():
            zipped.write(source, name)
    with pytest.raises(InputError, match="space for uploads is nearly full"):
        session.load_uploaded_zip(archive)
    assert session.workspace.dataset.name == public.dataset.name


def test_public_mode_caps_files_sent_to_the_app():
    from explorer.ui.app import launch_options

    assert launch_options(ServingPolicy.for_public())["max_file_size"] == "256mb"
    assert launch_options()["max_file_size"] == "500mb"


def test_session_files_live_in_the_temp_folder_gradio_serves_from_whatever_the_cache(tmp_path):
    import tempfile

    files = SessionFiles(Path.home() / ".cache" / "somewhere")  # a cache outside the temp folder, as by default
    assert files.root.is_relative_to(tempfile.gettempdir())
    assert sessions_folder(tmp_path / "a") != sessions_folder(tmp_path / "b")  # two apps never sweep each other
