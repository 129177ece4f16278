"""One browser session's view of the app: the shared default workspace until the user changes something, then
its own cheap copy (copy-on-write), so sessions never see each other's uploads, models or training runs."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator

import pandas as pd

from explorer.errors import InputError
from explorer.progress import Progress
from explorer.training.train import EpochRecord, TrainingResult, TrainingSettings, history_frame
from explorer.workspace.workspace import Workspace


class WorkspaceSession:
    """One browser session's view: the shared default until its first change, then a private copy.

    Deep-copying (what a UI framework does to give each session its own initial state) yields a fresh session on
    the same shared workspace, never a copy of the workspace itself.
    """

    def __init__(self, shared: Workspace):
        shared.read_only = True
        self._shared = shared
        self._own: Workspace | None = None
        self._stop_training = threading.Event()
        self._training: threading.Thread | None = None

    def __deepcopy__(self, memo: dict) -> WorkspaceSession:
        return WorkspaceSession(self._shared)

    @property
    def workspace(self) -> Workspace:
        return self._own if self._own is not None else self._shared

    @property
    def training_running(self) -> bool:
        return self._training is not None and self._training.is_alive()

    def edit(self) -> Workspace:
        """The session's own workspace, copied from the shared one on first use.

        Refused while this session trains: the run would otherwise finish onto data or a model changed under it.
        """
        if self.training_running:
            raise InputError(
                "Training is running in this session: cancel it (Train tab) or wait for it to finish before "
                "changing the data, the model or the metrics."
            )
        if self._own is None:
            self._own = self._shared.copy()
        return self._own

    def train(self, settings: TrainingSettings, progress: Progress | None = None) -> Iterator[tuple[pd.DataFrame, str]]:
        """Train in this session, yielding (history so far, status) after every epoch and once at the end.

        Training runs in a worker thread (with the caller's context, so progress trackers follow it) while this
        generator reports; `stop_training()` from another thread ends it before the next batch, and so does
        closing the generator (the browser went away).
        """
        workspace = self.edit()  # also refuses a second run while one is going
        epochs: list[EpochRecord] = []
        outcome: list[TrainingResult | BaseException] = []

        def run() -> None:
            try:
                outcome.append(workspace.train(settings, progress, self._stop_training.is_set, epochs.append))
            except BaseException as error:  # re-raised in the caller's thread below
                outcome.append(error)
            finally:
                self._stop_training.clear()  # a Cancel ends one run, never the next

        worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), name="training", daemon=True)
        self._training = worker
        worker.start()
        shown = 0
        try:
            while worker.is_alive():
                worker.join(timeout=0.5)
                if len(epochs) > shown:
                    shown = len(epochs)
                    yield history_frame(epochs), f"Training: epoch {shown}/{settings.epochs} done."
        finally:
            if worker.is_alive():  # the caller stopped listening (tab closed, event cancelled): stop the run too
                self._stop_training.set()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        result = outcome[0]
        if not result.history:
            status = f"{result.stopped_reason or 'Stopped'} No epoch finished: the extractor is unchanged."
        else:
            status = (result.stopped_reason or f"Finished {len(result.history)} epoch(s).") + (
                " The views now use the trained extractor; Compare shows it against the one before training."
            )
        yield history_frame(result.history), status

    def arm_training(self) -> None:
        """Forget a Cancel pressed while nothing was queued or running; called when Train is clicked, so a
        Cancel pressed while the run still waits in the queue is kept and stops it as soon as it starts."""
        if not self.training_running:
            self._stop_training.clear()

    def stop_training(self) -> None:
        self._stop_training.set()
