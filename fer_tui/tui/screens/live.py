"""The Live screen: runs `fer-tui live --output -` in a child process and shows its stream.

OpenCV's window wants the main thread of its process, so the pipeline runs in a child
(`python -m fer_tui live ...`, from `launch.fer_tui_command`) that writes one JSON record per
frame on stdout. A thread worker reads it, keeps the newest record and posts it about ten times
a second (`RecordReceived`, which `can_replace` an older one still queued). Where there is no
display (over SSH), the terminal-only mode asks the child for a small grey preview in each
record and draws it here with half-blocks. The child is killed when the screen stops it,
unmounts or the app exits.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import deque
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Header, Input, Label, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from fer_tui.checkpoints import find_checkpoint
from fer_tui.launch import fer_tui_command
from fer_tui.live.config import DETECTORS, LiveConfig
from fer_tui.live.display import has_display
from fer_tui.tui.settings import Settings
from fer_tui.tui.widgets.big_label import BigLabel
from fer_tui.tui.widgets.frame_preview import FramePreview
from fer_tui.tui.widgets.prob_bars import ProbBars


class RecordReceived(Message):
    """The child produced a frame record; only the newest one matters."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RecordReceived)


class ChildEnded(Message):
    """The `fer-tui live` child exited (return code, last lines of its stderr)."""

    def __init__(self, code: int, stderr: list[str]) -> None:
        super().__init__()
        self.code = code
        self.stderr = stderr


class LiveScreen(Screen[None]):
    """Webcam or video: the largest face's label and seven probabilities, every face's track
    id, label and confidence, FPS and stage latencies."""

    # focus Start, not the source field: a focused Input would swallow the app's 1-4 and q keys
    # (escape leaves a field: FerApp's leave_field)
    AUTO_FOCUS = "#live-start"
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("t", "toggle_terminal", "Terminal-only"),
    ]

    DEFAULT_CSS = """
    LiveScreen #live-form { height: 3; padding: 0 1; }
    LiveScreen #live-form Label { padding: 1 1 0 0; }
    LiveScreen #live-source { width: 20; }
    LiveScreen #live-checkpoint { width: 1fr; }
    LiveScreen #live-detector { width: 13; }
    LiveScreen #live-form Button { min-width: 9; margin-left: 1; }
    LiveScreen #live-display { padding: 0 1; color: $text-muted; height: auto; }
    LiveScreen #live-error { display: none; margin: 0 1; }
    LiveScreen #live-error.-shown { display: block; }
    LiveScreen #live-body { height: 1fr; }
    LiveScreen #live-preview { margin: 0 1; }
    LiveScreen #live-side { width: 1fr; }
    LiveScreen #live-stats { padding: 1 1; height: auto; }
    LiveScreen #live-faces { padding: 0 1; height: auto; }
    """

    terminal_only: reactive[bool] = reactive(False)
    running: reactive[bool] = reactive(False)

    def __init__(
        self,
        settings: Settings,
        *,
        preview_size: tuple[int, int] = (64, 48),
        update_hz: float = 10.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.preview_size = preview_size
        self.update_hz = update_hz
        self.display_ok = has_display()
        self._proc: subprocess.Popen[str] | None = None
        self.last_record: dict[str, Any] | None = None
        self.set_reactive(LiveScreen.terminal_only, not self.display_ok)

    @property
    def child(self) -> subprocess.Popen[str] | None:
        """The `fer-tui live` child process while one runs."""
        return self._proc

    def _default_checkpoint(self) -> str:
        found = find_checkpoint(self.settings.checkpoints_dir, self.settings.runs_dir)
        return str(found) if found else ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="live-form"):
            yield Label("source")
            yield Input(
                "0", id="live-source", placeholder="camera index, video file, image folder or URL"
            )
            yield Label("checkpoint")
            yield Input(
                self._default_checkpoint(),
                id="live-checkpoint",
                placeholder="checkpoints/*.pt, runs/<run>/best.pt or a .onnx",
            )
            yield Label("detector")
            yield Select(
                [(name, name) for name in DETECTORS],
                value=LiveConfig.detector,
                allow_blank=False,
                id="live-detector",
            )
            yield Checkbox("terminal only", not self.display_ok, id="live-terminal")
            yield Button("Start", id="live-start", variant="success")
            yield Button("Stop", id="live-stop", variant="error", disabled=True)
        yield Static(id="live-display")
        yield Static(id="live-error", classes="error-panel")
        with Horizontal(id="live-body"):
            yield FramePreview(id="live-preview")
            with Vertical(id="live-side"):
                yield BigLabel(id="live-label")
                yield ProbBars(id="live-probs")
                yield Static("faces -   FPS -", id="live-stats")
                yield Static(id="live-faces")
        yield Footer()

    def on_mount(self) -> None:
        self.watch_terminal_only(self.terminal_only)

    # ------------------------------------------------------------------ view state

    def watch_terminal_only(self, value: bool) -> None:
        box = self.query_one("#live-terminal", Checkbox)
        with box.prevent(Checkbox.Changed):  # the box follows the state; no echo back
            box.value = value
        self.query_one(FramePreview).display = value
        if not self.display_ok:
            text = (
                "No display here (DISPLAY and WAYLAND_DISPLAY are unset, e.g. over SSH): "
                "terminal-only mode draws a low-resolution preview of the frame below."
            )
            if not value:
                text += " [b]Without it the OpenCV window cannot open: press t.[/b]"
        elif value:
            text = "Terminal-only mode: the frame is previewed here, no OpenCV window."
        else:
            text = (
                "The OpenCV window opens on the display (q or Esc in it closes it); "
                "t switches to terminal-only mode."
            )
        self.query_one("#live-display", Static).update(text)

    def watch_running(self, value: bool) -> None:
        start = self.query_one("#live-start", Button)
        stop = self.query_one("#live-stop", Button)
        # enable and focus one button before disabling the other: left to itself, the focus
        # leaves a disabled button for the next widget, the source field, which then takes
        # x, t and 1-4 as text. A start always focuses Stop (also from the source field, where
        # enter starts); the end gives Start the focus back when Stop had it.
        enabled, disabled = (stop, start) if value else (start, stop)
        enabled.disabled = False
        if self.focused in (None, disabled) or value:
            enabled.focus()
        disabled.disabled = True

    def _show_error(self, text: str | None) -> None:
        panel = self.query_one("#live-error", Static)
        panel.update(text or "")
        panel.set_class(bool(text), "-shown")

    # ------------------------------------------------------------------ actions

    @on(Checkbox.Changed, "#live-terminal")
    def _terminal_changed(self, event: Checkbox.Changed) -> None:
        self.terminal_only = event.value

    def action_toggle_terminal(self) -> None:
        self.terminal_only = not self.terminal_only

    @on(Button.Pressed, "#live-start")
    @on(Input.Submitted)
    def action_start(self) -> None:
        if self.running:
            return
        source = self.query_one("#live-source", Input).value.strip() or "0"
        checkpoint = self.query_one("#live-checkpoint", Input).value.strip()
        # --realtime: a video file plays at its own speed, like a camera
        argv = [*fer_tui_command("live"), "--output", "-", "--source", source, "--realtime"]
        detector = self.query_one("#live-detector", Select).value
        if detector in DETECTORS:  # not yet set while the screen is being mounted
            argv += ["--detector", str(detector)]
        if checkpoint:
            argv += ["--checkpoint", checkpoint]
        else:  # the child picks the default model (the live-size one first) where we look
            argv += ["--runs-dir", str(self.settings.runs_dir)]
        if self.terminal_only:
            w, h = self.preview_size
            argv += ["--no-window", "--preview", f"{w}x{h}"]
        self._show_error(None)
        self.running = True
        self.run_pipeline(argv)

    @on(Button.Pressed, "#live-stop")
    def action_stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def on_unmount(self) -> None:
        self._kill()

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    # ------------------------------------------------------------------ the child

    @work(thread=True, exclusive=True, group="live", exit_on_error=False)
    def run_pipeline(self, argv: list[str]) -> None:
        """Start `fer-tui live`, forward its newest record ~10 times a second, report its end."""
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                errors="replace",
            )
        except OSError as exc:
            self.post_message(ChildEnded(-1, [f"cannot start fer-tui live: {exc}"]))
            return
        self._proc = proc
        stderr: deque[str] = deque(maxlen=12)

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if line.strip():
                    stderr.append(line.rstrip())

        err_thread = threading.Thread(target=read_stderr, name="live-stderr", daemon=True)
        err_thread.start()
        worker = get_current_worker()
        period, last, pending = 1.0 / self.update_hz, 0.0, None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if worker.is_cancelled:
                    return
                try:
                    pending = json.loads(line)
                except ValueError:
                    continue
                now = time.monotonic()
                if now - last >= period:
                    self.post_message(RecordReceived(pending))
                    last, pending = now, None
            if pending is not None:
                self.post_message(RecordReceived(pending))
            code = proc.wait()
            err_thread.join(timeout=2.0)
            self.post_message(ChildEnded(code, list(stderr)))
        finally:
            # cancelled (screen gone, app exiting) or failed: never leave the child behind
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5.0)

    @on(RecordReceived)
    def _record(self, message: RecordReceived) -> None:
        rec = self.last_record = message.record
        faces = rec.get("faces", [])
        label = self.query_one(BigLabel)
        bars = self.query_one(ProbBars)
        # the largest face gets the big label and the bars; every face has a line in the list
        faces = sorted(faces, key=lambda f: -f["box"][2] * f["box"][3])
        if faces:
            label.word = faces[0]["label"]
            bars.show_probs(faces[0]["probs"], faces[0]["label"])
        else:
            label.word = "no face"
            bars.show_probs(None)
        t = rec.get("timings_ms", {})
        detector = f" ({rec['detector']})" if rec.get("detector") else ""
        self.query_one("#live-stats", Static).update(
            f"faces [b]{len(faces)}[/b]{detector}   [b]{rec.get('fps', 0):.1f}[/b] FPS   "
            f"frame {rec.get('frame')}   dropped {rec.get('dropped', 0)}\n"
            f"capture {t.get('capture', 0):.1f} ms   detect {t.get('detect', 0):.1f} ms   "
            f"classify {t.get('classify', 0):.1f} ms   total {t.get('total', 0):.1f} ms"
        )
        self.query_one("#live-faces", Static).update(face_lines(faces))
        if self.terminal_only:
            self.query_one(FramePreview).show_record(rec)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "live" and event.state == WorkerState.ERROR:
            self.running = False
            self._kill()
            self._show_error(f"the live reader failed: {event.worker.error}")

    @on(ChildEnded)
    def _ended(self, message: ChildEnded) -> None:
        self.running = False
        self._proc = None
        errors = [
            ln.removeprefix("fer-tui: error: ")
            for ln in message.stderr
            if ln.startswith("fer-tui: error:")
        ]
        summary = next((ln for ln in reversed(message.stderr) if ln.startswith("live: ")), "")
        if errors:
            self._show_error(errors[-1])
        elif message.code not in (0, -15, 130):
            tail = "\n".join(message.stderr[-6:]) or "(no output)"
            self._show_error(f"fer-tui live exited with code {message.code}:\n{tail}")
        elif summary:
            self.notify(summary, title="Live ended")


def face_lines(faces: list[dict[str, Any]], limit: int = 8) -> str:
    """One line per face, largest first: track id, label, confidence, box size; the largest
    (shown above in big letters) marked."""
    lines = []
    for i, f in enumerate(faces[:limit]):
        conf = f.get("confidence", f["probs"].get(f["label"], 0.0))
        track = f.get("track_id")
        lines.append(
            f"{'▶' if i == 0 else ' '} #{track if track is not None else '?':<3} "
            f"{f['label']:<9} {conf:4.0%}  {f['box'][2]}x{f['box'][3]} px"
        )
    if len(faces) > limit:
        lines.append(f"  and {len(faces) - limit} more")
    return "\n".join(lines)
