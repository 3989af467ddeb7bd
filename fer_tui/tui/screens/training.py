"""The Training screen: start ResNets in the background, follow every run, stop and resume.

The screen owns no trainer. It starts detached trainers (fer_tui.launch) and follows the run
dirs: a timer every `poll_interval` seconds kicks one thread worker that tails every run's
events.jsonl incrementally (RunTracker) and posts a RunStateChanged per run that changed,
rescanning the runs dir every `rescan_interval` seconds. Leaving the TUI leaves the runs going;
coming back re-reads them.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import Worker, WorkerState

from fer_tui import launch
from fer_tui.config import ARCHS
from fer_tui.errors import FerError
from fer_tui.run_tracker import RunTracker, RunView
from fer_tui.tui.messages import RunRemoved, RunStateChanged, TrainerExited
from fer_tui.tui.screens.start_dialog import StartDialog, StartRequest
from fer_tui.tui.settings import Settings
from fer_tui.tui.widgets.run_list import RunList
from fer_tui.tui.widgets.run_panel import RunPanel
from fer_tui.tui.widgets.system import SystemLine

if TYPE_CHECKING:
    from fer_tui.tui.screens.curves import CurvesScreen


class TrainingScreen(Screen[None]):
    """Run list, one panel per model, curves on demand, and the machine's load."""

    BINDINGS = [
        Binding("s", "start_run", "Start"),
        Binding("x", "stop_run", "Stop"),
        Binding("r", "resume_run", "Resume"),
        Binding("R", "resume_run('cpu')", "Resume on CPU", show=False),
        Binding("e", "evaluate", "Evaluate"),
        Binding("p", "plot", "Plot"),
    ]

    DEFAULT_CSS = """
    TrainingScreen #run-list { height: auto; max-height: 40%; min-height: 4; }
    TrainingScreen #run-panels { height: 1fr; }
    TrainingScreen #runs-hint { color: $text-muted; padding: 0 1; height: auto; }
    TrainingScreen #runs-hint.-hidden { display: none; }
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.views: dict[str, RunView] = {}
        self.pinned: dict[str, str] = {}
        """arch -> run id chosen with enter; otherwise a panel shows its arch's newest run."""
        self._tracker = RunTracker(Path(settings.runs_dir), settings.rescan_interval)
        self._tail_lock = threading.Lock()
        self._last_error: str | None = None
        self._curves: CurvesScreen | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="training-body"):
            yield RunList(id="run-list")
            yield Static(
                f"No runs in {self.settings.runs_dir} yet: press s to start training.",
                id="runs-hint",
            )
            with Horizontal(id="run-panels"):
                for arch in ARCHS:
                    yield RunPanel(arch, id=f"panel-{arch}")
            yield SystemLine(id="system")
        yield Footer()

    def on_mount(self) -> None:
        self.tail_runs()
        self.set_interval(self.settings.poll_interval, self.tail_runs)

    # --- following runs ---------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="tail", exit_on_error=False, description="tail runs")
    def tail_runs(self) -> None:
        """Read the new events of every run and post a message per run that changed."""
        # a slow poll (a huge backlog, a slow disk) must not overlap the next one
        if not self._tail_lock.acquire(blocking=False):
            return
        try:
            changed, removed = self._tracker.poll()
        finally:
            self._tail_lock.release()
        for run_id in removed:
            self.post_message(RunRemoved(run_id))
        for view in changed:
            self.post_message(RunStateChanged(view))

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        message = f"{event.worker.description or event.worker.name} failed: {error}"
        if message != self._last_error:  # the timer retries; say it once, not every poll
            self._last_error = message
            self.notify(message, severity="error", timeout=8)

    @on(RunStateChanged)
    def _run_changed(self, message: RunStateChanged) -> None:
        view = message.view
        self.views[view.run_id] = view
        self.query_one(RunList).show(view)
        self.query_one("#runs-hint").set_class(True, "-hidden")
        self._refresh_panels()
        if self._curves is not None:
            self._curves.show(self._panel_views())

    @on(RunRemoved)
    def _run_removed(self, message: RunRemoved) -> None:
        self.views.pop(message.run_id, None)
        self.query_one(RunList).remove(message.run_id)
        self.query_one("#runs-hint").set_class(bool(self.views), "-hidden")
        self._refresh_panels()

    def _panel_views(self) -> list[RunView]:
        """Each arch's pinned run, else its newest run (the latest `--arch all` group)."""
        shown = []
        for arch in ARCHS:
            view = self.views.get(self.pinned.get(arch, ""))
            if view is None:
                of_arch = [v for v in self.views.values() if v.arch == arch]
                view = max(of_arch, key=lambda v: v.run_id, default=None)
            if view is not None:
                shown.append(view)
        return shown

    def _refresh_panels(self) -> None:
        by_arch = {v.arch: v for v in self._panel_views()}
        for arch in ARCHS:
            panel = self.query_one(f"#panel-{arch}", RunPanel)
            view = by_arch.get(arch)
            if view != panel.view:
                panel.show(view)

    @on(DataTable.RowSelected, "#run-list")
    def _pin(self, event: DataTable.RowSelected) -> None:
        view = self.views.get(str(event.row_key.value))
        if view is not None and view.arch in ARCHS:
            self.pinned[view.arch] = view.run_id
            self._refresh_panels()

    # --- actions ----------------------------------------------------------------------------

    def _selected(self) -> RunView | None:
        view = self.query_one(RunList).selected
        if view is None:
            self.notify("no run selected: start one with s", severity="warning")
        return view

    def _on_trainer_exit(self, pid: int, returncode: int, log_path: Path) -> None:
        # called in the launcher's reaper thread; post_message is thread-safe
        self.post_message(TrainerExited(pid, returncode, log_path, launch.log_tail(log_path)))

    def _launch(self, request: StartRequest) -> int:
        return launch.start_training(
            request.config,
            request.arch,
            runs_dir=self.settings.runs_dir,
            device=request.device,
            epochs=request.epochs,
            data=self.settings.data,
            limit=request.limit,
            on_exit=self._on_trainer_exit,
        )

    def action_start_run(self) -> None:
        """Open the start dialog; it launches the trainer and reports errors inline."""
        dialog = StartDialog(self.settings.configs_dir, self._launch, self.settings.runs_dir)
        self.app.push_screen(dialog, self._started)

    def _started(self, pid: int | None) -> None:
        if pid is None:
            return
        self.pinned.clear()  # show the new group
        self._tracker.rescan_soon()
        self.tail_runs()
        self.notify(f"trainer started (pid {pid}); it keeps running if you quit fer-tui")

    @on(TrainerExited)
    def _trainer_exited(self, message: TrainerExited) -> None:
        # 0: done; 130 (the trainer's "stopped") or death by SIGTERM/SIGINT: stopped as asked.
        # Anything else died, maybe before writing any event: show what it said.
        self._tracker.rescan_soon()
        if message.returncode in (0, 130, -signal.SIGTERM, -signal.SIGINT):
            return
        said = message.log_tail or "(no output)"
        self.notify(
            f"trainer pid {message.pid} exited with code {message.returncode}:\n{said}\n"
            f"full log: {message.log_path}",
            severity="error",
            timeout=15,
        )

    def action_stop_run(self) -> None:
        """SIGTERM the selected run's trainer: it saves last.pt and writes `stopped`."""
        view = self._selected()
        if view is None:
            return
        try:
            pid = launch.stop_run(view.run_dir)
        except FerError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"stopping {view.run_id} (SIGTERM to pid {pid}); it saves and exits")

    def action_resume_run(self, device: str | None = None) -> None:
        """Continue the selected stopped/crashed/failed run in its own dir."""
        view = self._selected()
        if view is None:
            return
        try:
            pid = launch.resume_run(
                view.run_dir,
                device=device,
                data=self.settings.data,
                on_exit=self._on_trainer_exit,
            )
        except launch.NoGpuError as exc:
            self.notify(
                f"{exc}. Press R (shift+r) to resume on the CPU.", severity="error", timeout=10
            )
            return
        except (FerError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(f"resuming {view.run_id} (pid {pid})")

    async def action_evaluate(self) -> None:
        """Open the Evaluation screen on the selected run's final weights (the EMA or the last
        epoch, as `fer-tui ship` would choose; a run in progress: its last.pt)."""
        view = self._selected()
        if view is None:
            return
        checkpoint = view.final_checkpoint()
        if checkpoint is None:
            self.notify(
                f"{view.run_id} has no weights to evaluate yet (last.pt comes after its "
                f"first epoch)",
                severity="warning",
            )
            return
        await self.app.switch_mode("evaluation")
        # the Evaluation screen's hook: pick this checkpoint and evaluate it
        select = getattr(self.app.screen, "select_checkpoint", None)
        if callable(select):
            select(checkpoint)

    def action_plot(self) -> None:
        """All models' curves on one chart per metric, like the paper's Figure 2."""
        from fer_tui.tui.screens.curves import CurvesScreen  # deferred: plotext loads on demand

        self._curves = CurvesScreen(self._panel_views())
        self.app.push_screen(self._curves, self._curves_closed)

    def _curves_closed(self, _: None) -> None:
        self._curves = None
