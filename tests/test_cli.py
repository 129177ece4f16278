"""`python -m explorer train|evaluate|embed` on a small generated dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from explorer import cli
from explorer import const as C
from explorer.cli import main
from explorer.data import generate_shapes_dataset
from explorer.models import ViTExtractor, read_checkpoint_metadata

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never wait on the Hugging Face hub

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "test_efficientnet", "--image-size", "32"]


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    generate_shapes_dataset(root, n_classes=8, images_per_class=4, image_size=48, seed=0)
    return root / "df.csv"


def test_train_writes_a_checkpoint_and_prints_the_history(csv_path, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    argv = [
        "train",
        "--data",
        str(csv_path),
        *TINY,
        "--out",
        str(out),
        "--epochs",
        "2",
        "--n-labels",
        "2",
        "--n-instances",
        "2",
        "--lr",
        "1e-3",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert "val_cmc_1" in printed.out and f"Checkpoint: {out}, using epoch " in printed.out
    assert printed.out.splitlines()[1].split()[:2] == ["0", "-"]  # epoch 0: validation before training, no loss
    phases = [line for line in printed.err.replace("\r", "\n").splitlines() if not line.startswith("Training")]
    assert [line for line in phases if line.strip()] == [
        "validating before training: 16 queries, 16 gallery images",
        "epoch 1/2",
        "validating after epoch 1: 16 queries, 16 gallery images",
        "epoch 2/2",
        "validating after epoch 2: 16 queries, 16 gallery images",
    ]
    metadata = read_checkpoint_metadata(out)
    assert metadata.training["epochs_done"] == 2 and metadata.image_config["input_size"] == 32
    assert metadata.training["keep"] == "best" and metadata.training["select_by"] == "OVERALL/cmc/1"


def test_train_keep_last_ends_on_the_last_epoch(csv_path, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    argv = ["train", "--data", str(csv_path), *TINY, "--out", str(out), "--epochs", "2", "--n-labels", "2"]
    assert main([*argv, "--n-instances", "2", "--keep", "last", "--select-by", "OVERALL/map/5"]) == 0
    assert "using epoch 2 of 2 (the last; OVERALL/map/5 = " in capsys.readouterr().out
    assert read_checkpoint_metadata(out).training["epoch_in_use"] == 2


@pytest.mark.parametrize(("flag", "stored"), [("auto", None), ("on", True), ("off", False)])
def test_train_fine_tune_flag_reaches_the_settings_in_the_checkpoint(csv_path, tmp_path, flag, stored):
    out = tmp_path / "model.safetensors"
    argv = ["train", "--data", str(csv_path), *TINY, "--out", str(out), "--epochs", "1", "--n-labels", "2"]
    assert main([*argv, "--n-instances", "2", "--fine-tune", flag, "--keep", "last"]) == 0
    assert read_checkpoint_metadata(out).training["fine_tune"] is stored


@pytest.mark.parametrize(("flag", "pooling"), [("gem", "gem"), ("keep", None)])
def test_train_pooling_flag_decides_the_checkpoints_pooling(csv_path, tmp_path, capsys, flag, pooling):
    out = tmp_path / "model.safetensors"
    argv = ["train", "--data", str(csv_path), *TINY, "--out", str(out), "--epochs", "1", "--n-labels", "2"]
    assert main([*argv, "--n-instances", "2", "--fine-tune", "on", "--keep", "last", "--pooling", flag]) == 0
    metadata = read_checkpoint_metadata(out)
    assert metadata.training["pooling"] == flag and metadata.pooling == pooling
    capsys.readouterr()
    assert main([*argv, "--pooling", "max"]) != 0
    error = capsys.readouterr().err.strip()
    assert "--pooling: invalid choice: 'max'" in error and len(error.splitlines()) == 1


def test_train_recipe_flags_reach_the_settings_and_bad_ones_are_named(csv_path, tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    argv = ["train", "--data", str(csv_path), *TINY, "--out", str(out), "--epochs", "1", "--n-instances", "2"]
    recipe = ["--layer-decay", "0.5", "--frozen-fraction", "0.1", "--warmup-fraction", "0", "--final-lr-fraction", "1"]
    assert main([*argv, *recipe, "--n-labels", "50", "--absolute-margin"]) == 0  # n_labels above the labels: capped
    training = read_checkpoint_metadata(out).training
    assert training["relative_margin"] is False
    assert (training["layer_decay"], training["frozen_fraction"], training["warmup_fraction"]) == (0.5, 0.1, 0.0)
    assert training["final_lr_fraction"] == 1.0 and training["n_labels"] < 50
    capsys.readouterr()
    assert main([*argv, "--layer-decay", "0"]) != 0
    assert "layer_decay must be above 0" in capsys.readouterr().err


def test_evaluate_prints_the_metrics_table(csv_path, tmp_path, capsys):
    checkpoint = ViTExtractor(None, arch="test_efficientnet").save(tmp_path / "model.safetensors")
    assert main(["evaluate", "--data", str(csv_path), "--model", str(checkpoint), "--image-size", "32"]) == 0
    printed = capsys.readouterr().out
    for metric in ("OVERALL/cmc/1", "OVERALL/cmc/5", "OVERALL/map/5", "OVERALL/precision/5"):
        assert metric in printed
    assert "16 queries, 16 gallery items" in printed


@pytest.mark.parametrize("suffix", [".npy", ".parquet"])
def test_embed_writes_one_row_per_image(csv_path, tmp_path, suffix):
    out = tmp_path / f"embeddings{suffix}"
    assert main(["embed", "--data", str(csv_path), *TINY, "--split", "validation", "--out", str(out)]) == 0
    if suffix == ".npy":
        assert np.load(out).shape == (16, 256)
    else:
        table = pd.read_parquet(out)
        assert len(table) == 16 and len(table[C.EMBEDDING_COLUMN][0]) == 256 and "label" in table.columns


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--data", "/no/such/data.csv"], "neither a built-in dataset"),
        (["evaluate", "--data", "mock", "--model", "/no/such/model.safetensors"], "Checkpoint file not found"),
        (["embed", "--data", "mock", *TINY, "--out", "embeddings.txt"], "must end with .npy or .parquet"),
        (["train", "--data", "mock", *TINY, "--out", "m.safetensors", "--n-labels", "1"], "n_labels must be between 2"),
        (["evaluate", "--data", "mock", "--arch", "no_such_arch"], "Unknown architecture 'no_such_arch'"),
    ],
)
def test_bad_input_gives_one_line_and_non_zero_exit(argv, message, capsys):
    assert main(argv) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and message in error


def _one_error_line(capsys) -> str:
    """The whole of stderr, which must be exactly one `error: ...` line."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("flag", ["--image-size", "--batch-size"])
def test_sizes_below_one_are_usage_errors(flag, capsys):
    assert main(["evaluate", "--data", "mock", *TINY, flag, "0"]) == 1
    assert f"argument {flag}: must be a whole number of at least 1, got '0'" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--data", "mock", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["evaluate"], "the following arguments are required: --data"),
        (["train", "--data", "mock", "--out", "m.safetensors", "--lr", "fast"], "argument --lr: invalid float value"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
    ],
)
def test_malformed_flags_give_one_line_and_exit_status_1(argv, message, capsys):
    assert main(argv) == 1
    assert message in _one_error_line(capsys)


def test_help_still_exits_0(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0 and "--margin" in capsys.readouterr().out


def _no_training(*args, **kwargs):
    raise AssertionError("training started although the input is unusable")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (["--lr", "nan"], "learning rate (lr) must be a finite number above 0, got nan"),
        (["--margin", "nan"], "margin (None: soft margin) must be a finite number 0 or more, got nan"),
        (["--margin", "inf"], "got inf"),
        (["--margin=-inf"], "got -inf"),  # negative means soft margin, but not an infinite one
        (["--select-by", "cmc@1"], "select_by must be a validation metric such as OVERALL/cmc/1"),
        (["--keep", "first"], "argument --keep: invalid choice: 'first'"),
    ],
)
def test_non_finite_settings_are_refused_before_training(setting, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "train_extractor", _no_training)
    monkeypatch.setattr(cli, "load_dataset", _no_training)  # refused before the data is even read
    assert main(["train", "--data", "mock", *TINY, "--out", str(tmp_path / "m.safetensors"), *setting]) == 1
    assert message in _one_error_line(capsys)
    assert not list(tmp_path.iterdir())


class _TrainingStarted(Exception):
    pass


def test_negative_margin_means_the_soft_margin_loss(tmp_path, monkeypatch):
    def record_settings(*args, settings, **kwargs):
        raise _TrainingStarted(settings)

    monkeypatch.setattr(cli, "train_extractor", record_settings)
    with pytest.raises(_TrainingStarted) as started:
        main(["train", "--data", "mock", *TINY, "--out", str(tmp_path / "m.safetensors"), "--margin", "-1"])
    assert started.value.args[0].margin is None


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("model.pt", "must end with .safetensors"),
        ("folder.safetensors", "is a folder"),
        ("a_file/model.safetensors", "cannot create the folder a_file"),
    ],
)
def test_train_checks_out_before_any_training(out, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.safetensors").mkdir()
    (tmp_path / "a_file").write_text("a file where a folder would go")
    monkeypatch.setattr(cli, "train_extractor", _no_training)
    assert main(["train", "--data", "mock", *TINY, "--out", out]) == 1
    error = _one_error_line(capsys)
    assert error.startswith("error: --out") and message in error


def test_train_and_embed_create_the_out_folder(csv_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = ["--epochs", "1", "--n-labels", "2", "--n-instances", "2"]
    assert main(["train", "--data", str(csv_path), *TINY, *settings, "--out", "runs/shapes.safetensors"]) == 0
    assert read_checkpoint_metadata(tmp_path / "runs" / "shapes.safetensors").training["epochs_done"] == 1
    assert main(["embed", "--data", str(csv_path), *TINY, "--out", "out/new/emb.parquet"]) == 0
    assert len(pd.read_parquet(tmp_path / "out" / "new" / "emb.parquet")[C.EMBEDDING_COLUMN]) == 32


def test_train_refuses_an_out_folder_it_cannot_write_to(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "train_extractor", _no_training)
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)  # as root, chmod would not stop writing
    assert main(["train", "--data", "mock", *TINY, "--out", str(tmp_path / "model.safetensors")]) == 1
    assert "is not writable" in capsys.readouterr().err


@pytest.mark.parametrize("bug", [KeyError("column"), ValueError("internal"), TypeError("internal")])
def test_internal_errors_keep_their_traceback(bug, monkeypatch):
    def broken_loader(*args, **kwargs):
        raise bug

    monkeypatch.setattr(cli, "load_dataset", broken_loader)
    with pytest.raises(type(bug)):
        main(["evaluate", "--data", "mock"])


def test_with_categories_imports_the_category_folders(tmp_path):
    folder = tmp_path / "images"
    for category, name in [("birds", "crow"), ("birds", "owl"), ("cars", "bus"), ("cars", "van")]:
        (folder / category / name).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (24, 24), (40 * i, 90, 160)).save(folder / category / name / f"{i}.png")
    out = tmp_path / "embeddings.parquet"
    assert main(["embed", "--data", str(folder), "--with-categories", *TINY, "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 8 and sorted(set(table[C.CATEGORIES_COLUMN])) == ["birds", "cars"]


def test_module_entry_point_runs_as_a_program(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "explorer", "evaluate", "--data", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 1 and done.stderr.strip().startswith("error: ")
    assert len(done.stderr.strip().splitlines()) == 1


def test_embed_on_two_processes_writes_what_one_process_writes(csv_path, tmp_path):
    argv = ["embed", "--data", str(csv_path), *TINY, "--split", "validation", "--batch-size", "5"]
    torch.manual_seed(0)  # the same random weights for both runs
    assert main([*argv, "--out", str(tmp_path / "one.parquet")]) == 0
    torch.manual_seed(0)
    ddp = ["--devices", "2", "--accelerator", "cpu", "--strategy", "ddp_spawn"]
    assert main([*argv, *ddp, "--out", str(tmp_path / "two.parquet")]) == 0
    one, two = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "two.parquet")
    pd.testing.assert_frame_equal(one.drop(columns=C.EMBEDDING_COLUMN), two.drop(columns=C.EMBEDDING_COLUMN))
    np.testing.assert_allclose(np.stack(two[C.EMBEDDING_COLUMN]), np.stack(one[C.EMBEDDING_COLUMN]), atol=1e-6)
