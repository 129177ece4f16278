"""Downloads: a workspace's embeddings, metrics and projections, and its extractor as a checkpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explorer import const as C
from explorer.models import save_checkpoint
from explorer.progress import Progress
from explorer.viz.projection import projection_frame, save_projection

if TYPE_CHECKING:
    from explorer.workspace.workspace import Workspace


def export_workspace(workspace: Workspace, methods: Sequence[str], progress: Progress | None = None) -> list[Path]:
    """Write embeddings (.npy + parquet with paths and labels), metrics (CSV + JSON) and projection coords."""
    out = _export_folder(workspace)
    out.mkdir(parents=True)
    embeddings = workspace.embeddings()
    np.save(out / "embeddings.npy", embeddings)
    table = workspace.df.reset_index(names="id").assign(**{C.PATHS_COLUMN: workspace.paths})
    table[C.EMBEDDINGS_KEY] = list(embeddings)
    table.to_parquet(out / "embeddings.parquet", index=False)
    workspace.metrics_table().to_csv(out / "metrics.csv", index=False)
    evaluation = workspace.evaluation()
    (out / "metrics.json").write_text(
        json.dumps({"metrics": _jsonable(evaluation.metrics_flat), "model": workspace.extractor.description}, indent=2)
    )
    files = [out / "embeddings.npy", out / "embeddings.parquet", out / "metrics.csv", out / "metrics.json"]
    for method in methods:
        frame = projection_frame(
            workspace.projection_coords(method, progress),
            workspace.df.assign(**{C.PATHS_COLUMN: workspace.paths}),
            method,
        )
        files.append(save_projection(frame, out / f"projection_{method}.csv"))
    return files


def export_checkpoint(workspace: Workspace) -> Path:
    """Write the current extractor to a checkpoint file the user can download (and load again)."""
    out = _export_folder(workspace) / f"{_safe_name(workspace.extractor.choice.name)}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(workspace.extractor.model, out)
    return out


def _export_folder(workspace: Workspace) -> Path:
    """A fresh folder per download, so concurrent sessions never overwrite each other's files."""
    return workspace.cache_dir / "exports" / uuid.uuid4().hex


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "model"


def _jsonable(values: dict) -> dict:
    return {str(k): (None if isinstance(v, float) and np.isnan(v) else float(v)) for k, v in values.items()}
