"""Bring your own embeddings: .npy or parquet for a dataset, checked and aligned; the workspace explores them
without a model and says which actions need one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tiny_workspace import TINY_MODEL, build_tiny_workspace

from explorer import const as C
from explorer.data.precomputed import load_embeddings
from explorer.errors import InputError
from explorer.workspace import Workspace, WorkspaceSession


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    workspace = build_tiny_workspace(tmp_path_factory.mktemp("byo"))
    WorkspaceSession(workspace)
    return workspace


def _frame(paths: list[str]) -> pd.DataFrame:
    return pd.DataFrame({C.PATHS_COLUMN: paths, C.LABELS_COLUMN: range(len(paths))})


def test_npy_rows_follow_the_dataset_rows(tmp_path):
    vectors = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.save(tmp_path / "e.npy", vectors)
    loaded = load_embeddings(tmp_path / "e.npy", _frame(list("abcd")))
    assert loaded.dtype == np.float32 and np.array_equal(loaded, vectors)


def test_npy_embeddings_are_read_into_memory_not_left_mapped_to_the_file(tmp_path):
    vectors = np.ones((4, 3), dtype=np.float32)  # float32 and contiguous: a view of the memory map would do
    np.save(tmp_path / "e.npy", vectors)
    loaded = load_embeddings(tmp_path / "e.npy", _frame(list("abcd")))
    np.save(tmp_path / "e.npy", np.zeros((4, 3), dtype=np.float32))  # the file rewritten while the app runs
    assert loaded.flags.writeable and not isinstance(loaded, np.memmap) and np.array_equal(loaded, vectors)


def test_parquet_with_paths_is_aligned_by_path(tmp_path):
    table = pd.DataFrame({C.PATHS_COLUMN: ["c", "a", "b"], C.EMBEDDING_COLUMN: [[3.0, 3.0], [1.0, 1.0], [2.0, 2.0]]})
    table.to_parquet(tmp_path / "e.parquet")
    loaded = load_embeddings(tmp_path / "e.parquet", _frame(["a", "b", "c"]))
    assert loaded[:, 0].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: np.save(p / "e.npy", np.zeros((3, 2))), r"has 3 rows but the dataset has 4 images"),
        (lambda p: np.save(p / "e.npy", np.zeros(4)), r"shape \(4,\); embeddings must be \[N, D\]"),
        (lambda p: np.save(p / "e.npy", np.array([[0.0], [np.nan], [1.0], [2.0]])), r"NaN or infinite .* row 1"),
        (lambda p: (p / "e.npy").write_bytes(b"not numpy"), r"is not a readable \.npy matrix"),
        (lambda p: pd.DataFrame({"x": [1]}).to_parquet(p / "e.parquet"), r"has no 'embedding' column"),
        (
            lambda p: pd.DataFrame({C.PATHS_COLUMN: list("abc"), C.EMBEDDING_COLUMN: [[1.0]] * 3}).to_parquet(
                p / "e.parquet"
            ),
            r"no embedding for 1 of the dataset's 4 images, e.g. 'd'",
        ),
        (lambda p: (p / "e.csv").write_text("1,2"), r"must end with \.npy or \.parquet"),
    ],
)
def test_bad_embeddings_files_get_a_message_that_says_what_to_fix(tmp_path, write, message):
    write(tmp_path)
    (name,) = [p.name for p in tmp_path.iterdir()]
    with pytest.raises(InputError, match=message):
        load_embeddings(tmp_path / name, _frame(list("abcd")))


def test_a_workspace_explores_precomputed_embeddings_without_a_model(shared, tmp_path):
    np.save(tmp_path / "mine.npy", shared.embeddings())
    session = WorkspaceSession(shared)
    session.use_embeddings(tmp_path / "mine.npy")
    workspace = session.workspace
    assert workspace.extractor is None and "embeddings from mine.npy" in workspace.describe()
    assert workspace.evaluation().metrics_flat == pytest.approx(shared.evaluation().metrics_flat)
    first = [int(shared.items.query_items[0])]
    assert np.array_equal(np.asarray(workspace.query_grid(first, 3)), np.asarray(shared.query_grid(first, 3)))
    assert workspace.projection("pca", "label") is not None
    with pytest.raises(InputError, match="Search by image needs the model that computed these embeddings"):
        workspace.search(shared.items.paths[0], 3)
    with pytest.raises(InputError, match="Downloading a checkpoint needs the model"):
        session.save_checkpoint()
    with pytest.raises(InputError, match="no model to embed the new data with"):
        session.load_data("mock")
    session.set_model(TINY_MODEL, "random")  # a model again: its own embeddings replace the file's
    assert workspace.precomputed is None and workspace.extractor is not None


def test_build_from_an_embeddings_file(shared, tmp_path):
    np.save(tmp_path / "e.npy", shared.embeddings())
    csv = shared.dataset.root / "df.csv"
    workspace = Workspace.build(str(csv), embeddings=tmp_path / "e.npy", cache_dir=tmp_path / "cache")
    assert workspace.extractor is None
    assert workspace.evaluation().metrics_flat == pytest.approx(shared.evaluation().metrics_flat)
