"""One browser session's view of the app: the shared default workspace until the user changes something, then
its own cheap copy (copy-on-write), so sessions never see each other's uploads, models or training runs.

The session also owns what one visitor may hold: its files (removed by `close()` when the browser session ends),
one heavy job at a time (a data or model load, or a training run) and the Cancel that stops it."""

from __future__ import annotations

import contextlib
import contextvars
import shutil
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from explorer.errors import InputError
from explorer.progress import Progress
from explorer.training.train import (
    BatchRecord,
    EpochRecord,
    TrainingResult,
    TrainingSettings,
    batches_frame,
    history_frame,
)
from explorer.workspace.files import EXPORTS, UPLOADS, SessionFiles
from explorer.workspace.workspace import Workspace

CHECKPOINTS = "checkpoints"
IDLE_SWEEP_EVERY_S = 60.0
_live_sessions: weakref.WeakSet[WorkspaceSession] = weakref.WeakSet()  # every session not yet garbage-collected
_live_guard = threading.Lock()


class Cancelled(InputError):
    """The user pressed Cancel: the job stopped and the session kept its previous state."""


@dataclass(frozen=True)
class TrainingUpdate:
    """What a training run shows, while it runs and at its end."""

    history: pd.DataFrame  # one row per validated epoch, epoch 0 (before training) first
    batches: pd.DataFrame  # one row per training step
    status: str


class WorkspaceSession:
    """One browser session's view: the shared default until its first change, then a private copy.

    Deep-copying (what a UI framework does to give each session its own initial state) yields a fresh session on
    the same shared workspace, never a copy of the workspace itself.
    """

    def __init__(self, shared: Workspace):
        shared.read_only = True
        self._shared = shared
        self._own: Workspace | None = None
        self._cancel = threading.Event()
        self._training: threading.Thread | None = None
        self.files = SessionFiles(shared.cache_dir)
        self._job_guard = threading.Lock()
        self._job: str | None = None  # what the session's one heavy job is doing, for the "busy" message
        self.latest_checkpoint: Path | None = None  # the weights in use after the latest training run
        self.last_used = time.monotonic()
        self._closed_idle_after: float | None = None  # set when the idle sweep closed the session
        with _live_guard:
            _live_sessions.add(self)

    def __deepcopy__(self, memo: dict) -> WorkspaceSession:
        return WorkspaceSession(self._shared)

    @property
    def workspace(self) -> Workspace:
        self._touch()
        return self._own if self._own is not None else self._shared

    def _touch(self) -> None:
        """Mark the session as in use (every view and change reads its workspace); refuse once it was closed idle."""
        if self._closed_idle_after is not None:
            raise InputError(
                f"This session was closed after {self._closed_idle_after / 60:.0f} minutes without use and its files "
                "were removed: reload the page to start a new one."
            )
        self.last_used = time.monotonic()

    @property
    def training_running(self) -> bool:
        return self._training is not None and self._training.is_alive()

    def edit(self) -> Workspace:
        """The session's own workspace, copied from the shared one on first use.

        Refused while this session trains: the run would otherwise finish onto data or a model changed under it.
        """
        self._touch()
        if self.training_running:
            raise InputError(
                "Training is running in this session: cancel it (Train tab) or wait for it to finish before "
                "changing the data, the model or the metrics."
            )
        if self._own is None:
            self._own = self._shared.copy()
        return self._own

    def train(self, settings: TrainingSettings, progress: Progress | None = None) -> Iterator[TrainingUpdate]:
        """Train in this session, yielding what the run shows (curves so far and a status line naming its phase)
        whenever it moved on, and once at the end.

        Training runs in a worker thread (with the caller's context, so progress trackers follow it) while this
        generator reports; `cancel()` from another thread ends it before the next batch, and so does closing the
        generator (the browser went away). One run per session: a second one is refused while this one runs.
        """
        workspace = self.edit()  # also refuses a second run while one is going
        self._start_job("training", keep_pending_cancel=True)  # held until the worker ends
        epochs: list[EpochRecord] = []
        batches: list[BatchRecord] = []
        phase = ["starting", 0.0]  # the run's latest progress message and fraction done
        outcome: list[TrainingResult | BaseException] = []
        checkpoint = self.files.new_folder(CHECKPOINTS) / "trained.safetensors"

        def report(fraction: float, message: str) -> None:
            phase[:] = message, fraction
            if progress is not None:
                progress(fraction, message)

        def run() -> None:
            try:
                outcome.append(
                    workspace.train(
                        settings, report, self._cancel.is_set, epochs.append, checkpoint, on_batch=batches.append
                    )
                )
            except BaseException as error:  # re-raised in the caller's thread below
                outcome.append(error)
            finally:
                self._cancel.clear()  # a Cancel ends one run, never the next
                self._end_job()

        worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="training", daemon=True)
        self._training = worker
        worker.start()
        shown = None
        try:
            while worker.is_alive():
                worker.join(timeout=0.5)
                if (len(epochs), len(batches), phase[0]) != shown and worker.is_alive():
                    shown = (len(epochs), len(batches), phase[0])
                    status = f"Training: {phase[0]} · {phase[1]:.0%} done."
                    yield TrainingUpdate(history_frame(epochs[:]), batches_frame(batches[:]), status)
        finally:
            if worker.is_alive():  # the caller stopped listening (tab closed, event cancelled): stop the run too
                self._cancel.set()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        result = outcome[0]
        yield TrainingUpdate(result.history_frame(), batches_frame(batches), self._finished(result, checkpoint))

    def _finished(self, result: TrainingResult, checkpoint: Path) -> str:
        """The status line after a run, which says whose weights are in use; the run's checkpoint replaces the
        previous run's (whose file goes) when an epoch finished."""
        if not result.epochs_done:
            shutil.rmtree(checkpoint.parent, ignore_errors=True)
            return f"{result.stopped_reason or 'Stopped.'} No epoch finished: the extractor is unchanged."
        if self.latest_checkpoint is not None:
            shutil.rmtree(self.latest_checkpoint.parent, ignore_errors=True)
        self.latest_checkpoint = checkpoint
        done = result.stopped_reason or f"Finished {result.epochs_done} epoch(s)."
        return (
            f"{done} The views are {result.kept_summary()}; Compare shows it against the extractor before "
            "training, and Revert goes back to that one."
        )

    def revert_training(self) -> None:
        """Go back to the extractor before the last training run (see `Workspace.revert_training`)."""
        self.edit().revert_training()

    def arm_training(self) -> None:
        """Forget a Cancel pressed while nothing was queued or running; called when Train is clicked, so a
        Cancel pressed while the run still waits in the queue is kept and stops it as soon as it starts."""
        if not self.training_running:
            self._cancel.clear()

    def cancel(self) -> None:
        """Stop the session's running job (training, or a data / model load) at its next step."""
        self._cancel.set()

    # -- the heavy jobs: one at a time per session, cancellable, atomic --------------------------------------

    def load_data(self, source: str, dataset_root: str | None = None, progress: Progress | None = None) -> None:
        """Switch the session to another dataset (see `Workspace.load_data`); Cancel keeps the old one."""
        with self._heavy_job("loading data"):
            self.edit().load_data(source, dataset_root, self._cancellable(progress))

    def load_uploaded_zip(self, zip_path: str | Path, progress: Progress | None = None) -> None:
        """Switch to a dataset uploaded as a zip, unpacked into this session's own files."""
        with self._heavy_job("loading an upload"):
            budget = self._shared.policy.max_sessions_bytes
            room = None if budget is None else budget - self.files.all_sessions_bytes()
            folder = self.files.new_folder(UPLOADS)
            self.edit().load_uploaded_zip(zip_path, folder, self._cancellable(progress), room)

    def set_model(
        self, name: str, weights: str, checkpoint: str | None = None, progress: Progress | None = None
    ) -> None:
        """Switch the session's extractor (see `Workspace.set_model`); Cancel keeps the old one."""
        with self._heavy_job("loading a model"):
            self.edit().set_model(name, weights, checkpoint, self._cancellable(progress))

    def use_embeddings(self, path: str | Path, progress: Progress | None = None) -> None:
        """Explore embeddings computed elsewhere for the session's dataset (see `Workspace.use_embeddings`)."""
        with self._heavy_job("reading embeddings"):
            self.edit().use_embeddings(path, self._cancellable(progress))

    def export(self, methods: Sequence[str], progress: Progress | None = None) -> list[Path]:
        """Embeddings, metrics and projections as files in this session's folder (pruned, removed on close)."""
        return self.workspace.export(self.files.new_folder(EXPORTS), methods, progress)

    def save_checkpoint(self) -> Path:
        """The extractor in use as a downloadable checkpoint in this session's folder."""
        return self.workspace.save_checkpoint(self.files.new_folder(EXPORTS))

    def close(self) -> None:
        """The browser session ended: stop its job and remove every file it wrote."""
        self._cancel.set()
        self.files.close()

    def close_if_idle(self, max_idle_s: float, now: float | None = None) -> bool:
        """Close the session (files removed, its own workspace released) when it has not been used for
        `max_idle_s` seconds and runs no job; a later request gets a message saying to reload. True if closed."""
        now = time.monotonic() if now is None else now
        if self._closed_idle_after is not None or self._job is not None or now - self.last_used <= max_idle_s:
            return False
        self._closed_idle_after = max_idle_s
        self._own = None
        self.close()
        return True

    def check_free(self) -> None:
        """Refuse at once (before a new job even queues) while the session's one heavy job runs."""
        if self._job is not None:
            raise InputError(self._busy_message())

    def _busy_message(self) -> str:
        return f"This session is already {self._job or 'busy'}: wait for it to finish or press Cancel."

    def _start_job(self, what: str, keep_pending_cancel: bool = False) -> None:
        """Claim the session's one heavy-job slot, or say what holds it. A Cancel pressed earlier is forgotten,
        except for training, whose Train click arms it (`arm_training`) so a Cancel while queued still counts."""
        if not self._job_guard.acquire(blocking=False):
            raise InputError(self._busy_message())
        self._job = what
        if not keep_pending_cancel:
            self._cancel.clear()

    def _end_job(self) -> None:
        self._job = None
        self._job_guard.release()

    @contextlib.contextmanager
    def _heavy_job(self, what: str) -> Iterator[None]:
        self._start_job(what)
        try:
            yield
        finally:
            self._end_job()

    def _cancellable(self, progress: Progress | None) -> Progress:
        """`progress` that also stops the job when Cancel was pressed (checked at every report)."""

        def report(fraction: float, message: str) -> None:
            if self._cancel.is_set():
                raise Cancelled("Cancelled: the session keeps the data and model it had.")
            if progress is not None:
                progress(fraction, message)

        return report


def close_idle_sessions(shared: Workspace, max_idle_s: float) -> int:
    """Close every session of the app on `shared` unused for `max_idle_s` seconds (see
    `WorkspaceSession.close_if_idle`); how many were closed."""
    with _live_guard:
        sessions = [session for session in _live_sessions if session._shared is shared]
    return sum(session.close_if_idle(max_idle_s) for session in sessions)


def start_idle_sweep(shared: Workspace, max_idle_s: float) -> threading.Thread:
    """A daemon thread closing the idle sessions of the app on `shared` (every minute, or four times per
    `max_idle_s` if that is shorter), for sessions no page unload ends (API clients, raw HTTP, a browser that
    crashed): their files and memory are bounded in time too. It ends when the workspace is gone."""
    every_s = min(IDLE_SWEEP_EVERY_S, max_idle_s / 4)
    app = weakref.ref(shared)

    def sweep() -> None:
        while True:
            time.sleep(every_s)
            workspace = app()
            if workspace is None:
                return
            close_idle_sessions(workspace, max_idle_s)
            del workspace

    thread = threading.Thread(target=sweep, name="idle-session-sweep", daemon=True)
    thread.start()
    return thread
