"""The files one browser session writes (unpacked uploads, exports, checkpoints, search copies) in one folder
of its own, so they go when the session ends; and the start-up sweep of what earlier processes left behind.

Per session at most one unpacked upload (the dataset in use) and the `KEEP_EXPORTS` newest download folders
are kept; older downloads also go after `EXPORT_TTL_S`. Gradio copies every file it serves into its own cache
first, so removing ours never breaks a download in flight.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

from explorer.errors import InputError

SESSIONS_FOLDER = "sessions"
KEEP_EXPORTS = 3
EXPORT_TTL_S = 15 * 60
EXPORTS, UPLOADS, PICTURES = "exports", "uploads", "pictures"
KEEP_PICTURES = 32  # responses' images: Gradio has copied each into its cache before the next request
STALE_TMP_AGE_S = 10 * 60  # younger temp files may belong to another process writing right now
SESSION_ENDED = "This session has ended and its files are gone: reload the page to start a new one."


class SessionFiles:
    """A folder `<cache>/sessions/<random id>/` created on first use and removed by `close()`."""

    def __init__(self, cache_dir: Path):
        self.root = sessions_folder(cache_dir) / uuid.uuid4().hex
        self._guard = threading.Lock()
        self._closed = False

    def new_folder(self, kind: str) -> Path:
        """A fresh, empty folder of `kind` (EXPORTS, UPLOADS, …); old downloads are pruned first."""
        with self._guard:
            if self._closed:
                raise InputError(SESSION_ENDED)
            if kind == EXPORTS:
                self._prune_exports()
            folder = self.root / kind / uuid.uuid4().hex
            folder.mkdir(parents=True)
            return folder

    def new_picture(self, suffix: str = ".png") -> Path:
        """A fresh file name for one response's image (its own file: concurrent responses never share one)."""
        with self._guard:
            if self._closed:
                raise InputError(SESSION_ENDED)
            folder = self.root / PICTURES
            folder.mkdir(parents=True, exist_ok=True)
            for old in sorted(folder.glob("*"), key=lambda p: p.stat().st_mtime)[: -(KEEP_PICTURES - 1)]:
                old.unlink(missing_ok=True)
            return folder / f"{uuid.uuid4().hex}{suffix}"

    def _prune_exports(self) -> None:
        folders = sorted((self.root / EXPORTS).glob("*"), key=lambda p: p.stat().st_mtime, reverse=True)
        now = time.time()
        for index, folder in enumerate(folders):
            if index >= KEEP_EXPORTS - 1 or now - folder.stat().st_mtime > EXPORT_TTL_S:
                shutil.rmtree(folder, ignore_errors=True)

    def disk_bytes(self) -> int:
        """What this session's files take on disk."""
        return _folder_bytes(self.root)

    def all_sessions_bytes(self) -> int:
        """What every session's files take together (the public mode's shared upload budget counts these)."""
        return _folder_bytes(self.root.parent)

    def close(self) -> None:
        """Remove every file of the session (called when the browser session ends)."""
        with self._guard:
            self._closed = True
            shutil.rmtree(self.root, ignore_errors=True)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for path in folder.rglob("*") if folder.exists() else ():
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:  # removed meanwhile by its session
            continue
    return total


def sessions_folder(cache_dir: Path) -> Path:
    """Where one app's sessions keep their files: in the system's temp folder (the only place besides the working
    directory from which Gradio hands files to the browser), one folder per app cache so that two apps on one
    machine never sweep each other's sessions."""
    app = hashlib.sha1(str(Path(cache_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"metric-learning-explorer-{app}" / SESSIONS_FOLDER


def sweep_stale_files(cache_dir: Path, tmp_age_s: float = STALE_TMP_AGE_S) -> int:
    """At start-up: remove every session folder (no session outlives its process; `uploads` / `exports` are
    where earlier versions kept them) and temp files of interrupted atomic writes (`*.tmp`) older than
    `tmp_age_s` under the app cache. Returns how many entries were removed."""
    cache_dir = Path(cache_dir)
    removed = 0
    for parent in (sessions_folder(cache_dir), cache_dir / SESSIONS_FOLDER, cache_dir / UPLOADS, cache_dir / EXPORTS):
        for entry in parent.glob("*"):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed += 1
    now = time.time()
    for leftover in cache_dir.rglob("*.tmp"):
        if leftover.is_file() and now - leftover.stat().st_mtime > tmp_age_s:
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed
