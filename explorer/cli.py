"""`python -m explorer train|evaluate|embed`: the app's backend from a terminal.

Data is a built-in name ("shapes", "mock"), an OML CSV or an image folder (`explorer.data.load_dataset`); the model
is a preset, a timm pretrained name, a checkpoint, or `--arch` for random initialisation. Every bad input, a
malformed flag included, ends with one `error: ...` line on stderr and exit status 1 (`--help` exits 0); anything
else is a bug and shows its traceback. Training settings (NaN and infinities included) and the name of `--out` are
checked before any data is read; the folder of `--out` is created when missing, and checked to be writable, before
training or embedding starts.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from explorer import const as C
from explorer.data.datasets import DatasetQueryGallery
from explorer.data.loading import LoadedDataset, load_dataset
from explorer.data.schema import DatasetValidationError, bbox_of_row, resolve_path
from explorer.errors import InputError
from explorer.inference.distributed import distributed_inference_on_images
from explorer.inference.embed import INFERENCE_BATCH_SIZE, inference_on_images
from explorer.models.checkpoint import CHECKPOINT_SUFFIX
from explorer.models.extractor import ViTExtractor
from explorer.models.pooling import POOLING_CHOICES
from explorer.models.registry import OFFLINE_PRESET, PRESETS
from explorer.progress import Progress
from explorer.training.train import (
    KEEP_CHOICES,
    MINER_NAMES,
    OPTIMIZERS,
    SELECTABLE_METRICS,
    TrainingSettings,
    evaluate_extractor,
    train_extractor,
)

EXIT_BAD_INPUT = 1
EMBEDDING_SUFFIXES = (".npy", ".parquet")
ACCELERATORS = ("cpu", "gpu", "auto")
FINE_TUNE_CHOICES = {"auto": None, "on": True, "off": False}  # --fine-tune -> TrainingSettings.fine_tune
RECIPE_FLAGS = {  # TrainingSettings fields of the fine-tuning recipe, one --flag each
    "frozen_fraction": "with --fine-tune: freeze the first stages holding at most this fraction of the parameters",
    "layer_decay": "with --fine-tune: each earlier stage learns at this times the next stage's lr",
    "warmup_fraction": "fraction of the steps with a linear warm-up of the lr",
    "final_lr_fraction": "the lr at the last step, as a fraction of --lr (cosine decay after the warm-up)",
}


class UsageError(InputError):
    """A malformed command line (unknown flag, missing or unparsable value)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is an `InputError` like any other bad input: one line, exit status 1."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")


class TqdmProgress:
    """The project's progress callable, drawn as a tqdm bar."""

    def __init__(self, description: str) -> None:
        self.bar = tqdm(total=1.0, desc=description, bar_format="{l_bar}{bar}| {postfix}")

    def __call__(self, fraction: float, message: str) -> None:
        self.bar.n = round(fraction, 4)
        self.bar.set_postfix_str(message, refresh=True)

    def close(self) -> None:
        self.bar.close()


def _count(minimum: int) -> Callable[[str], int]:
    """argparse type: a whole number of at least `minimum` (else a usage error)."""

    def parse(text: str) -> int:
        if not text.strip().lstrip("-").isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {text!r}")
        return int(text)

    return parse


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="built-in name (shapes, mock, digits), OML CSV, or image folder")
    parser.add_argument("--root", default=None, help="folder the CSV's paths are relative to (default: its folder)")
    parser.add_argument(
        "--with-categories",
        action="store_true",
        help="image folder laid out as <category>/<class>/<image>: import the categories too",
    )


def _add_model_arguments(parser: argparse.ArgumentParser, default_model: str | None) -> None:
    parser.add_argument(
        "--model",
        default=default_model,
        help=f"preset ({', '.join(PRESETS)}), timm 'arch.tag', or checkpoint .safetensors (default: {default_model})",
    )
    parser.add_argument("--arch", default=None, help="architecture for random initialisation (instead of --model)")
    parser.add_argument("--normalise", action="store_true", help="L2-normalise embeddings")
    parser.add_argument(
        "--image-size",
        type=_count(1),
        default=None,
        help="input size (default: the model's; train: automatic, at most the images' side, at least half the model's)",
    )
    parser.add_argument("--batch-size", type=_count(1), default=INFERENCE_BATCH_SIZE, help="inference batch size")
    parser.add_argument("--num-workers", type=_count(0), default=0, help="DataLoader worker processes")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m explorer", description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train an extractor and write a checkpoint")
    _add_data_arguments(train)
    _add_model_arguments(train, OFFLINE_PRESET)
    train.add_argument("--out", required=True, help="checkpoint to write (.safetensors)")
    defaults = TrainingSettings()
    train.add_argument("--epochs", type=int, default=defaults.epochs)
    train.add_argument("--lr", type=float, default=defaults.lr)
    train.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=defaults.optimizer)
    train.add_argument("--margin", type=float, default=defaults.margin, help="triplet margin; negative: soft margin")
    train.add_argument(
        "--absolute-margin",
        action="store_true",
        help="--margin in embedding units (default: a fraction of the triplets' mean distance)",
    )
    train.add_argument("--miner", choices=MINER_NAMES, default=defaults.miner)
    train.add_argument("--n-labels", type=int, default=defaults.n_labels)
    train.add_argument("--n-instances", type=int, default=defaults.n_instances)
    train.add_argument("--no-augment", action="store_true", help="train without augmentations")
    train.add_argument("--seed", type=int, default=defaults.seed)
    train.add_argument(
        "--select-by",
        default=defaults.select_by,
        help=f"validation metric that picks the epoch to keep, e.g. {', '.join(SELECTABLE_METRICS)}",
    )
    train.add_argument(
        "--keep",
        choices=KEEP_CHOICES,
        default=defaults.keep,
        help="end on the best epoch by --select-by (epoch 0, before training, included) or on the last one",
    )
    train.add_argument(
        "--fine-tune",
        choices=FINE_TUNE_CHOICES,
        default="auto",
        help="the fine-tuning recipe (frozen BatchNorm statistics and first stages, smaller lr for earlier "
        "stages); auto: on for pretrained weights or a checkpoint, off for --arch",
    )
    for name, help_text in RECIPE_FLAGS.items():
        train.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name), help=help_text)
    train.add_argument(
        "--pooling",
        choices=POOLING_CHOICES,
        default=defaults.pooling,
        help="with --fine-tune: 'gem' replaces a convnet's average pooling by GeM (p=3), 'keep' leaves it",
    )

    evaluate = commands.add_parser("evaluate", help="print the validation metrics of a model")
    _add_data_arguments(evaluate)
    _add_model_arguments(evaluate, OFFLINE_PRESET)

    embed = commands.add_parser("embed", help="embed a dataset's images to .npy or .parquet")
    _add_data_arguments(embed)
    _add_model_arguments(embed, OFFLINE_PRESET)
    embed.add_argument("--split", choices=(*C.SPLITS, "all"), default="all")
    embed.add_argument("--out", required=True, help="output file: .npy (matrix) or .parquet (rows + embedding)")
    embed.add_argument(
        "--devices",
        type=_count(1),
        default=None,
        help="embed as a Lightning predict on N devices (default: one process)",
    )
    embed.add_argument("--accelerator", choices=ACCELERATORS, default="auto", help="with --devices: the device kind")
    embed.add_argument("--strategy", default="auto", help="with --devices: Lightning strategy (ddp, ddp_spawn, ...)")
    embed.add_argument("--num-nodes", type=_count(1), default=1, help="with --devices: machines taking part")
    return parser


def _load_data(args: argparse.Namespace) -> LoadedDataset:
    return load_dataset(args.data, args.root, with_categories=args.with_categories)


def _checked_out(out: str, suffixes: tuple[str, ...], what: str) -> Path:
    """`--out` as a file name with one of `suffixes` (not an existing folder); cheap, so it is checked first."""
    path = Path(out)
    if path.suffix.lower() not in suffixes:
        raise InputError(f"--out {path} must end with {' or '.join(suffixes)} ({what}).")
    if path.is_dir():
        raise InputError(f"--out {path} is a folder: give a file name ending with {' or '.join(suffixes)}.")
    return path


def _prepare_out_folder(path: Path) -> None:
    """Create the folder of `--out` (as the Python API does) and make sure it can be written to, before the work."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"--out {path}: cannot create the folder {path.parent} ({error.strerror or error})."
        ) from error
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {path}: the folder {path.parent} is not writable; choose another path.")


def _margin(value: float) -> float | None:
    """`--margin`: a negative number means the soft-margin loss (None); NaN and infinities go on to be refused."""
    return None if math.isfinite(value) and value < 0 else value


def _extractor(args: argparse.Namespace) -> ViTExtractor:
    if args.arch is not None:
        extractor = ViTExtractor(None, arch=args.arch, normalise_features=args.normalise)
    else:
        extractor = ViTExtractor(args.model, normalise_features=args.normalise or None)
    extractor.set_input_size(args.image_size)
    return extractor


def _validation_dataset(data: LoadedDataset, extractor: ViTExtractor) -> DatasetQueryGallery:
    if data.validation_df.empty:
        raise DatasetValidationError(f"{data.name} has no '{C.VALIDATION_SPLIT}' rows to evaluate on.")
    return DatasetQueryGallery(data.validation_df, data.root, transform=extractor.get_transforms())


def _with_phase_lines(progress: TqdmProgress) -> Progress:
    """`progress`, plus one line on stderr whenever the run enters a phase ("validating before training: N queries,
    M gallery images", "epoch k/n", "validating after epoch k: ..."), so that a log shows where it is."""
    shown = [""]

    def report(fraction: float, message: str) -> None:
        phase = message.split(" (")[0] if message.startswith("validating") else message.split(",")[0]
        if phase != shown[0]:
            shown[0] = phase
            tqdm.write(phase, file=sys.stderr)
        progress(fraction, message)

    return report


def run_train(args: argparse.Namespace) -> None:
    checkpoint_path = _checked_out(args.out, (CHECKPOINT_SUFFIX,), "checkpoints are safetensors files")
    settings = TrainingSettings(
        epochs=args.epochs,
        lr=args.lr,
        optimizer=args.optimizer,
        margin=_margin(args.margin),
        relative_margin=not args.absolute_margin,
        miner=args.miner,
        n_labels=args.n_labels,
        n_instances=args.n_instances,
        image_size=args.image_size,
        augment=not args.no_augment,
        num_workers=args.num_workers,
        eval_batch_size=args.batch_size,
        seed=args.seed,
        select_by=args.select_by,
        keep=args.keep,
        fine_tune=FINE_TUNE_CHOICES[args.fine_tune],
        **{name: getattr(args, name) for name in RECIPE_FLAGS},
        pooling=args.pooling,
    )
    data = _load_data(args)
    if data.train_df.empty:
        raise DatasetValidationError(f"{data.name} has no '{C.TRAIN_SPLIT}' rows to train on.")
    extractor = _extractor(args)
    _prepare_out_folder(checkpoint_path)
    progress = TqdmProgress("Training")
    try:
        result = train_extractor(
            extractor,
            data.train_df,
            data.validation_df if not data.validation_df.empty else None,
            dataset_root=data.root,
            settings=settings,
            progress=_with_phase_lines(progress),
            checkpoint_path=checkpoint_path,
        )
    finally:
        progress.close()
    print(result.history_frame().to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    if result.stopped_reason:
        print(f"Stopped early: {result.stopped_reason}", file=sys.stderr)
    if result.epochs_done:
        print(f"Checkpoint: {result.checkpoint_path}, {result.kept_summary()}")
    else:
        print("No epoch finished: no checkpoint written.")


def run_evaluate(args: argparse.Namespace) -> None:
    data = _load_data(args)
    extractor = _extractor(args)
    progress = TqdmProgress("Embedding")
    try:
        evaluation = evaluate_extractor(
            extractor, _validation_dataset(data, extractor), args.batch_size, args.num_workers, progress
        )
    finally:
        progress.close()
    table = pd.Series(evaluation.metrics_flat, name="value").rename_axis("metric").reset_index()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{evaluation.n_queries} queries, {evaluation.n_gallery} gallery items")
    if evaluation.n_queries_without_gt:
        print(f"{evaluation.n_queries_without_gt} queries have no relevant gallery item")


def run_embed(args: argparse.Namespace) -> None:
    out = _checked_out(args.out, EMBEDDING_SUFFIXES, "a matrix, or the rows plus an embedding column")
    data = _load_data(args)
    df = data.df if args.split == "all" else data.df[data.df[C.SPLIT_COLUMN] == args.split].reset_index(drop=True)
    if df.empty:
        raise DatasetValidationError(f"{data.name} has no rows in split {args.split!r}.")
    extractor = _extractor(args)
    _prepare_out_folder(out)
    paths = [resolve_path(p, data.root) for p in df[C.PATHS_COLUMN]]
    bboxes = [bbox_of_row(row) for _, row in df.iterrows()]
    transform = extractor.get_transforms()
    if args.devices is None:
        embeddings = inference_on_images(
            extractor, paths, transform, args.num_workers, args.batch_size, verbose=True, bboxes=bboxes
        )
    else:
        embeddings = distributed_inference_on_images(
            extractor,
            paths,
            transform,
            bboxes,
            args.batch_size,
            args.num_workers,
            devices=args.devices,
            accelerator=args.accelerator,
            strategy=args.strategy,
            num_nodes=args.num_nodes,
        )
        if embeddings is None:  # another process of the run; global rank 0 writes the output
            return
    _write_embeddings(out, df, embeddings.numpy())


def _write_embeddings(out: Path, df: pd.DataFrame, embeddings: np.ndarray) -> None:
    """The `.npy` matrix, or the rows of `df` plus the embedding column, by the suffix of `out`."""
    if out.suffix.lower() == ".npy":
        np.save(out, embeddings)
    else:
        df.assign(**{C.EMBEDDING_COLUMN: list(embeddings)}).to_parquet(out, index=False)
    print(f"Wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {out}")


COMMANDS = {"train": run_train, "evaluate": run_evaluate, "embed": run_embed}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except InputError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
