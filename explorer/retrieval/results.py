"""`RetrievalResults`: what the search found for every query; the single source of metrics and pictures."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

NO_ITEM = -1  # padding of `retrieved` where a query has fewer than `top_n` allowed gallery items


@dataclass
class RetrievalResults:
    """Per query (row), its nearest gallery items sorted by (distance, gallery position).

    Rows are padded to `top_n` columns: `retrieved` with -1, `distances` with inf, `is_relevant` with False;
    `n_retrieved` says how many columns are real. Gallery positions index the gallery (0..G-1), and
    `query_ids` / `gallery_ids` map rows and gallery positions back to dataset rows.
    """

    query_ids: Tensor  # [Q] dataset row of every query
    gallery_ids: Tensor  # [G] dataset row of every gallery item
    retrieved: Tensor  # [Q, top_n] gallery positions, NO_ITEM padding
    distances: Tensor  # [Q, top_n] Euclidean distances, inf padding
    is_relevant: Tensor  # [Q, top_n] same label as the query, False padding
    n_retrieved: Tensor  # [Q] real columns of each row
    n_gt: Tensor  # [Q] ground-truth gallery items (same label, not itself, not its sequence)
    query_labels: Tensor  # [Q] label codes
    gallery_labels: Tensor  # [G] label codes
    query_sequences: Tensor  # [Q] sequence codes (every item its own sequence when none given)
    gallery_sequences: Tensor  # [G] sequence codes

    def __len__(self) -> int:
        return len(self.query_ids)

    @property
    def top_n(self) -> int:
        return self.retrieved.shape[1]

    def row(self, query_position: int) -> tuple[Tensor, Tensor, Tensor]:
        """The real (unpadded) retrieved gallery positions, distances and relevance flags of one query."""
        n = int(self.n_retrieved[query_position])
        return (
            self.retrieved[query_position, :n],
            self.distances[query_position, :n],
            self.is_relevant[query_position, :n],
        )

    def gt_positions(self, query_position: int) -> Tensor:
        """Gallery positions of the query's ground truth, ascending (exclusions applied as in the search).

        Compared in numpy, on one thread: torch would split each comparison over the gallery across its threads,
        which on busy cores costs more waiting than computing."""
        same_label = self.gallery_labels.numpy() == int(self.query_labels[query_position])
        other_sequence = self.gallery_sequences.numpy() != int(self.query_sequences[query_position])
        not_itself = self.gallery_ids.numpy() != int(self.query_ids[query_position])
        return torch.from_numpy(np.flatnonzero(same_label & other_sequence & not_itself))

    def take(self, query_positions: Tensor | list[int]) -> RetrievalResults:
        """A `RetrievalResults` holding only the given rows, in the given order."""
        rows = torch.as_tensor(query_positions, dtype=torch.long)
        per_query = {
            "query_ids",
            "retrieved",
            "distances",
            "is_relevant",
            "n_retrieved",
            "n_gt",
            "query_labels",
            "query_sequences",
        }
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return RetrievalResults(**{k: (v[rows] if k in per_query else v) for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON-ready; infinite padding distances become None)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "distances":
                out[f.name] = [[d if d != float("inf") else None for d in row] for row in value.tolist()]
            else:
                out[f.name] = value.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalResults:
        """Inverse of `to_dict`."""
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"RetrievalResults.from_dict: the dict lacks keys {missing}; pass what to_dict() gave.")
        dtypes = {"distances": torch.float32, "is_relevant": torch.bool}
        values = {}
        for f in fields(cls):
            raw = data[f.name]
            if f.name == "distances":
                raw = [[float("inf") if d is None else d for d in row] for row in raw]
            values[f.name] = torch.tensor(raw, dtype=dtypes.get(f.name, torch.long))
        if values["retrieved"].ndim == 1:  # zero queries or zero columns serialise to a flat empty list
            width = 0
            for name in ("retrieved", "distances", "is_relevant"):
                values[name] = values[name].reshape(len(values["query_ids"]), width)
        return cls(**values)
