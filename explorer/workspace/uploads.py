"""Safe unpacking of a dataset uploaded as a zip, and finding the dataset inside it."""

from __future__ import annotations

import zipfile
from pathlib import Path

from explorer.errors import InputError

MAX_UPLOAD_UNPACKED_BYTES = 4 * 1024**3  # a zip that unpacks beyond this is refused (zip-bomb guard)
MAX_UPLOAD_MEMBERS = 200_000
MAX_UPLOAD_DEPTH = 16  # folder levels of a member: a dataset needs 3 (<category>/<class>/<image>) plus a wrapper


def unpack_upload(
    zip_path: str | Path,
    destination: Path,
    max_bytes: int = MAX_UPLOAD_UNPACKED_BYTES,
    max_members: int = MAX_UPLOAD_MEMBERS,
    room_bytes: int | None = None,
) -> Path:
    """Unpack an uploaded dataset zip safely (no paths outside `destination`, bounded size and file count) and
    return its root. `room_bytes`: what the server has left for all sessions' uploads (None: no shared budget).

    The root is the single top-level folder when the zip wraps everything in one, else `destination`.
    """
    zip_path = Path(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise InputError(f"{zip_path.name} is not a zip file: upload a .zip of an image folder or a CSV + images.")
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        entries = archive.infolist()  # folders count too: each is an entry to create
        if len(entries) > max_members:
            raise InputError(
                f"{zip_path.name} holds {len(entries):,} files and folders; at most {max_members:,} are accepted."
            )
        deepest = max((m.filename.rstrip("/").count("/") + 1 for m in entries), default=0)
        if deepest > MAX_UPLOAD_DEPTH:
            raise InputError(
                f"{zip_path.name} nests folders {deepest} levels deep; at most {MAX_UPLOAD_DEPTH} are accepted "
                "(a dataset needs <class>/<image>, or <category>/<class>/<image>)."
            )
        members = [m for m in entries if not m.is_dir()]
        unpacked = sum(m.file_size for m in members)
        if unpacked > max_bytes:
            raise InputError(
                f"{zip_path.name} unpacks to {unpacked / 1024**3:.2f} GiB; at most {max_bytes / 1024**3:.0f} GiB are "
                "accepted."
            )
        if room_bytes is not None and unpacked > room_bytes:
            raise InputError(
                f"The server's space for uploads is nearly full ({max(room_bytes, 0) / 1024**2:.0f} MiB left, this zip "
                f"unpacks to {unpacked / 1024**2:.0f} MiB): try a smaller upload or come back later."
            )
        root = destination.resolve()
        for member in members:
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root):
                raise InputError(f"The zip member {member.filename!r} points outside the archive; refusing it.")
        archive.extractall(root)
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def dataset_source_in(folder: Path) -> Path:
    """A CSV at the top of an unpacked upload is the dataset; otherwise the folder is an image folder."""
    csvs = sorted(folder.glob("*.csv"))
    if len(csvs) > 1:
        names = ", ".join(p.name for p in csvs)
        raise InputError(f"The upload has several CSV files at its top level ({names}); keep exactly one.")
    return csvs[0] if csvs else folder
