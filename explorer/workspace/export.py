"""Downloads: embeddings, metrics and projections as files, and an extractor as a checkpoint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from explorer import const as C
from explorer.metrics.evaluation import EvaluationResult
from explorer.models import save_checkpoint
from explorer.viz.projection import projection_frame, save_projection
from explorer.workspace.tables import metrics_frame


def export_files(
    folder: Path,
    embeddings: np.ndarray,
    df: pd.DataFrame,
    evaluation: EvaluationResult,
    model_description: str,
    projections: Mapping[str, np.ndarray],
) -> list[Path]:
    """Write embeddings (.npy + parquet with the dataset's columns), metrics (CSV + JSON) and projection coords
    (one CSV per method) into `folder` (created if needed). Paths stay as the dataset gives them (relative to
    its root), so no file tells where the data lives on the server."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "embeddings.npy", embeddings)
    table = df.reset_index(names="id")
    table[C.EMBEDDING_COLUMN] = list(embeddings)
    table.to_parquet(folder / "embeddings.parquet", index=False)
    metrics_frame(evaluation.metrics_flat).to_csv(folder / "metrics.csv", index=False)
    (folder / "metrics.json").write_text(
        json.dumps({"metrics": _jsonable(evaluation.metrics_flat), "model": model_description}, indent=2)
    )
    files = [folder / name for name in ("embeddings.npy", "embeddings.parquet", "metrics.csv", "metrics.json")]
    for method, coords in projections.items():
        files.append(save_projection(projection_frame(coords, df, method), folder / f"projection_{method}.csv"))
    return files


def export_checkpoint(model: torch.nn.Module, model_name: str, folder: Path) -> Path:
    """Write `model` (a `ViTExtractor`) to `folder/<model name>.safetensors`, a checkpoint the app loads again."""
    out = folder / f"{_safe_name(model_name)}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(model, out)
    return out


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "model"


def _jsonable(values: dict) -> dict:
    return {str(k): (None if isinstance(v, float) and np.isnan(v) else float(v)) for k, v in values.items()}
