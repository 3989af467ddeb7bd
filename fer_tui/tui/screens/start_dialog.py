"""StartDialog: pick a config, archs, device, epochs and an optional limit, then start.

The config offered first is `scratch.toml` where an NVIDIA driver is visible and `cpu.toml`
where none is.

Below the fields it shows where the runs go and how much space their disk has free; a launch
that would not fit there is refused inline.

The dialog calls the launcher itself, so a bad config, an unwritable runs dir or cuda without
a GPU is shown inline and the user can fix the field and try again; when the error is "no GPU",
a "Start on CPU" button appears. It dismisses with the trainer's pid once one has started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from fer_tui import launch
from fer_tui.config import ARCHS
from fer_tui.errors import FerError
from fer_tui.launch import DEVICES, NoGpuError
from fer_tui.space import free_bytes, human_bytes


@dataclass(frozen=True)
class StartRequest:
    """What the user asked to start."""

    config: Path
    arch: str
    """"all" or one torchvision arch name."""
    device: str | None
    """None = the config's train.device."""
    epochs: int | None
    limit: int | None


#: Starts a trainer for a request and returns its pid, or raises FerError.
Launcher = Callable[[StartRequest], int]


class StartDialog(ModalScreen[int | None]):
    """The `s` dialog of the Training screen."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    StartDialog { align: center middle; }
    StartDialog > Vertical {
        width: 72;
        height: auto;
        max-height: 100%;
        border: round $primary;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    StartDialog .field { height: auto; }
    StartDialog .field > Label { width: 10; padding: 1 0 0 0; }
    StartDialog .field > Select, StartDialog .field > Input { width: 1fr; }
    StartDialog #start-space { color: $text-muted; height: auto; padding: 1 0 0 1; }
    StartDialog #start-error { color: $error; height: auto; padding: 0 0 0 1; }
    StartDialog #start-error.-hidden { display: none; }
    StartDialog .buttons { height: auto; align-horizontal: right; }
    StartDialog .buttons Button { margin: 0 0 0 1; }
    StartDialog #start-cpu { display: none; }
    StartDialog.-no-gpu #start-cpu { display: block; }
    """

    def __init__(
        self, configs_dir: Path, launcher: Launcher, runs_dir: Path | str | None = None
    ) -> None:
        super().__init__()
        self.configs_dir = Path(configs_dir)
        self.launcher = launcher
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None

    def space_text(self) -> str:
        """Where the runs go and the free space of their disk, as the dialog shows it."""
        if self.runs_dir is None:
            return ""
        free = free_bytes(self.runs_dir)
        shown = "free space unknown" if free is None else f"{human_bytes(free)} free"
        return f"runs go to {self.runs_dir} ({shown})"

    def _configs(self) -> list[Path]:
        try:
            return sorted(self.configs_dir.glob("*.toml"))
        except OSError:
            return []

    def compose(self) -> ComposeResult:
        configs = self._configs()
        names = [p.name for p in configs]
        wanted = (launch.default_recipe(), "scratch.toml", "cpu.toml", "smoke.toml")
        default = next((n for n in wanted if n in names), None)
        with Vertical() as box:
            box.border_title = "Start training"
            with Horizontal(classes="field"):
                yield Label("config")
                yield Select(
                    [(p.name, str(p)) for p in configs],
                    value=str(self.configs_dir / default) if default else Select.NULL,
                    prompt=f"no configs in {self.configs_dir}" if not configs else "config",
                    id="start-config",
                )
            with Horizontal(classes="field"):
                yield Label("archs")
                yield Select(
                    [("all three", "all"), *((a, a) for a in ARCHS)],
                    value="all",
                    allow_blank=False,
                    id="start-arch",
                )
            with Horizontal(classes="field"):
                yield Label("device")
                yield Select(
                    [("as in the config", ""), *((d, d) for d in DEVICES)],
                    value="",
                    allow_blank=False,
                    id="start-device",
                )
            with Horizontal(classes="field"):
                yield Label("epochs")
                yield Input(placeholder="from the config", type="integer", id="start-epochs")
            with Horizontal(classes="field"):
                yield Label("limit")
                yield Input(
                    placeholder="all images (or N per split, for a quick try)",
                    type="integer",
                    id="start-limit",
                )
            yield Static(self.space_text(), id="start-space")
            yield Static("", id="start-error", classes="-hidden")
            with Horizontal(classes="buttons"):
                yield Button("Start on CPU", id="start-cpu", variant="warning")
                yield Button("Start", id="start-go", variant="primary")
                yield Button("Cancel", id="start-cancel")

    def show_error(self, message: str) -> None:
        error = self.query_one("#start-error", Static)
        error.update(message)
        error.set_class(not message, "-hidden")

    def _number(self, selector: str, what: str) -> int | None:
        text = self.query_one(selector, Input).value.strip()
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            raise FerError(f"{what} must be a whole number, got {text!r}") from None
        if value < 1:
            raise FerError(f"{what} must be at least 1, got {value}")
        return value

    def request(self) -> StartRequest:
        """The form as a request; FerError when a field is unusable."""
        config = self.query_one("#start-config", Select).value
        if config is Select.NULL or config is None:
            raise FerError(f"choose a config (TOML files in {self.configs_dir})")
        return StartRequest(
            config=Path(str(config)),
            arch=str(self.query_one("#start-arch", Select).value),
            device=str(self.query_one("#start-device", Select).value) or None,
            epochs=self._number("#start-epochs", "epochs"),
            limit=self._number("#start-limit", "limit"),
        )

    def start(self) -> None:
        try:
            pid = self.launcher(self.request())
        except NoGpuError as exc:
            self.add_class("-no-gpu")
            self.show_error(f"{exc}\nPress 'Start on CPU' to train on the CPU instead.")
            return
        except FerError as exc:
            self.show_error(str(exc))
            return
        except OSError as exc:  # spawning itself failed (no such interpreter, fd limits)
            self.show_error(f"could not start the trainer: {exc}")
            return
        self.dismiss(pid)

    @on(Button.Pressed, "#start-go")
    def _go(self) -> None:
        self.start()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.start()

    @on(Button.Pressed, "#start-cpu")
    def _go_cpu(self) -> None:
        self.query_one("#start-device", Select).value = "cpu"
        self.remove_class("-no-gpu")
        self.start()

    @on(Button.Pressed, "#start-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
