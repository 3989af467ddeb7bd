"""The Evaluation screen's worker: the picked checkpoints evaluated in a thread, each model's
rows shown as soon as that model is done, and the progress line ("model k of n").

`EvaluationRun` sits between `EvaluationTables` (what it shows) and `EvaluationScreen` (the
layout and the checkpoint list, fer_tui.tui.screens.evaluation). Torch is imported only inside
the worker (by the evaluation code it calls).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.message import Message
from textual.widgets import ProgressBar, Select
from textual.worker import Worker, WorkerState, get_current_worker

from fer_tui.backends import check_backend
from fer_tui.errors import FerError
from fer_tui.evaluation.ensemble import ensemble_evaluation
from fer_tui.evaluation.runner import Cancelled, Evaluation, evaluate_checkpoints, load_data
from fer_tui.tui.screens.evaluation_tables import EvaluationTables
from fer_tui.tui.settings import Settings


class EvaluationProgressed(Message):
    """The worker moved on: a stage ("data" or "predict <file>") and how far it is; for a
    prediction, which model it is (1-based) of how many."""

    def __init__(self, stage: str, done: int, total: int, model: int = 0, models: int = 0) -> None:
        super().__init__()
        self.stage, self.done, self.total = stage, done, total
        self.model, self.models = model, models

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EvaluationProgressed)


class ModelEvaluated(Message):
    """One more checkpoint is done (predicted or cached): the reports so far, in pick order."""

    def __init__(self, reports: list[dict[str, Any]], models: int) -> None:
        super().__init__()
        self.reports = reports
        self.models = models


class EvaluationFinished(Message):
    """Reports for the evaluated checkpoints, in the order they were picked, and their
    ensemble's report when one was asked for."""

    def __init__(
        self, reports: list[dict[str, Any]], cached: int, ensemble: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.reports = reports
        self.cached = cached
        self.ensemble = ensemble


class EvaluationRun(EvaluationTables):
    """Evaluates in a thread worker and follows it on the progress bar and status line."""

    settings: Settings
    _data: Any
    """The loaded FerData, kept between evaluations (decoding it is the slow part)."""

    @property
    def tta(self) -> str:
        value = self.query_one("#tta", Select).value
        return value if isinstance(value, str) else "none"

    @property
    def backend(self) -> str:
        value = self.query_one("#backend", Select).value
        return value if isinstance(value, str) else "auto"

    @work(
        thread=True,
        exclusive=True,
        group="evaluate",
        exit_on_error=False,
        description="evaluate checkpoints",
    )
    def run_evaluation(
        self, checkpoints: list[Path], tta: str, backend: str = "auto", ensemble: bool = False
    ) -> None:
        worker = get_current_worker()
        check_backend(backend)
        done: list[Evaluation] = []
        models = len(checkpoints)

        def progress(stage: str, step: int, total: int) -> None:
            model = 0 if stage == "data" else len(done) + 1
            self.post_message(EvaluationProgressed(stage, step, total, model, models))

        def finished_one(_: int, result: Evaluation) -> None:
            done.append(result)
            if len(done) < models and not worker.is_cancelled:
                self.post_message(ModelEvaluated([r.report for r in done], models))

        if self._data is None:
            self._data = load_data(
                self.settings.data, progress, cancelled=lambda: worker.is_cancelled
            )
        results = evaluate_checkpoints(
            checkpoints,
            data=self._data,
            tta=tta,
            progress=progress,
            cancelled=lambda: worker.is_cancelled,
            backend=backend,
            on_result=finished_one,
        )
        # the ensemble averages the probabilities just predicted (or cached): no second pass
        combined = ensemble_evaluation(results).report if ensemble else None
        if not worker.is_cancelled:
            cached = sum(r.cached for r in results)
            self.post_message(EvaluationFinished([r.report for r in results], cached, combined))

    @on(EvaluationProgressed)
    def _progressed(self, message: EvaluationProgressed) -> None:
        bar = self.query_one("#eval-progress", ProgressBar)
        if message.stage == "data":
            # folders and zips count images, tar and CSV streams count bytes
            bar.update(total=message.total or None, progress=message.done)
            self._status(f"Loading the data ({self.settings.data or 'default places'})...")
            return
        bar.update(total=message.total, progress=message.done)
        self._status(
            f"{message.stage.replace('predict ', 'Predicting ')}, model {message.model} of "
            f"{message.models} (TTA {self.tta}): {message.done}/{message.total}"
        )

    @on(ModelEvaluated)
    def _model_evaluated(self, message: ModelEvaluated) -> None:
        self._show_reports(message.reports, partial=True)

    @on(EvaluationFinished)
    def _finished(self, message: EvaluationFinished) -> None:
        self.query_one("#eval-progress", ProgressBar).display = False
        self._show_reports(message.reports, message.ensemble)
        n = len(message.reports)
        from_cache = f", {message.cached} from the cache" if message.cached else ""
        also = " and their ensemble" if message.ensemble is not None else ""
        engine = message.reports[0].get("engine", "torch")
        self._status(
            f"Evaluated {n} checkpoint(s){also} on the test split, TTA "
            f"{message.reports[0]['tta']}, {engine}{from_cache}. Export: m / c / j."
        )

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, Cancelled):
            return
        text = str(error) if isinstance(error, FerError) else (f"{type(error).__name__}: {error}")
        self.query_one("#eval-progress", ProgressBar).display = False
        self._status(text, error=True)
        self.notify(text, title="Evaluation failed", severity="error", timeout=10)
