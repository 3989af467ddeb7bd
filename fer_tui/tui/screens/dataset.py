"""The Dataset screen: counts per split and class, imbalance, pixel statistics, sample faces and
the problems found in the data.

The data loads in a thread worker (the first decode of FER-2013 takes seconds; the cache then
makes it a fraction of one), so the screen paints at once with a progress bar. The worker calls
the same core as `fer-tui stats` (`load_dataset` + `dataset_stats`). A `DataError` shows in an
error panel on the screen; `l` loads again once the data is fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.events import Resize
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState, get_current_worker

from fer_tui.data.index import CLASSES
from fer_tui.errors import FerError
from fer_tui.tui.settings import Settings
from fer_tui.tui.widgets.class_bars import ClassBars
from fer_tui.tui.widgets.faces import FaceGrid
from fer_tui.tui.widgets.problems import ProblemList

if TYPE_CHECKING:
    import numpy as np

    from fer_tui.data.records import FerData

#: faces per class drawn from the data each shuffle (the grid shows as many rows as fit)
SAMPLES_PER_CLASS = 3


class DatasetScreen(Screen[None]):
    """Dataset overview for `settings.data` (or $FER_TUI_DATA, or the default places)."""

    BINDINGS = [
        # short descriptions: at 100 columns the footer must still show the app's 1-4, ?, q
        Binding("r", "reshuffle", "Shuffle", tooltip="Draw other sample faces"),
        Binding("t", "toggle_split", "Train/test", tooltip="Sample faces from the other split"),
        Binding("l", "reload", "Reload", tooltip="Load the data again (after fixing it)"),
    ]
    DEFAULT_CSS = """
    DatasetScreen #dataset-body { padding: 0 1; }
    DatasetScreen #dataset-loading { height: auto; padding: 1 2; }
    DatasetScreen #dataset-progress { margin-top: 1; }
    DatasetScreen #dataset-error { margin: 1 2; }
    DatasetScreen #dataset-view { height: auto; }
    DatasetScreen #dataset-source { color: $text-muted; }
    DatasetScreen #class-bars { margin-top: 1; }
    DatasetScreen .section-title { padding: 0; }
    DatasetScreen #dataset-error, DatasetScreen #dataset-view { display: none; }
    DatasetScreen.-ready #dataset-view { display: block; }
    DatasetScreen.-failed #dataset-error { display: block; }
    DatasetScreen.-ready #dataset-loading, DatasetScreen.-failed #dataset-loading {
        display: none;
    }
    """

    class LoadStarted(Message):
        """The source was found; decoding (or reading the cache) begins."""

        def __init__(self, source: str) -> None:
            super().__init__()
            self.source = source

    class LoadProgressed(Message):
        """Decoding advanced (units: see `fer_tui.data.load.Progress`)."""

        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done = done
            self.total = total

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DatasetScreen.LoadProgressed)

    class DataLoaded(Message):
        """The data and its statistics are ready."""

        def __init__(
            self, data: FerData, stats: dict[str, Any], blank: dict[str, np.ndarray]
        ) -> None:
            super().__init__()
            self.data = data
            self.stats = stats
            self.blank = blank

    class LoadFailed(Message):
        """The data could not be loaded; `message` says why and what to do."""

        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

    sample_split: reactive[str] = reactive("train", init=False)
    """Which split the sample faces come from."""
    seed: reactive[int] = reactive(0, init=False)
    """Seed of the sample pick; `r` advances it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.data: FerData | None = None
        self.stats: dict[str, Any] | None = None
        self._blank: dict[str, np.ndarray] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="dataset-body"):
            with Vertical(id="dataset-loading"):
                yield Label("Looking for FER-2013...", id="dataset-loading-label")
                yield ProgressBar(id="dataset-progress", show_eta=True)
            yield Static(id="dataset-error", classes="error-panel")
            with Vertical(id="dataset-view"):
                yield Static(id="dataset-source")
                yield ClassBars(id="class-bars")
                yield Static(id="dataset-summary")
                yield Label("Sample faces", id="faces-title", classes="section-title")
                yield FaceGrid(id="faces")
                yield Label("Problems", id="problems-title", classes="section-title")
                yield ProblemList(id="problems")
        yield Footer()

    def on_mount(self) -> None:
        self.add_class("-loading")
        # after the first frame: the worker's imports (numpy, cv2) hold the GIL for a while
        self.call_after_refresh(self.load_data)

    # --- loading ---------------------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        group="dataset",
        exit_on_error=False,
        description="load FER-2013",
    )
    def load_data(self) -> None:
        """Find, decode (or read from cache) and summarise the data, off the UI thread."""
        worker = get_current_worker()
        # deferred: numpy and cv2 load here, after the first paint
        from fer_tui.data.load import LoadCancelled, load_dataset, resolve_source
        from fer_tui.data.stats import blank_mask, dataset_stats

        try:
            source = resolve_source(self.settings.data)
            self.post_message(self.LoadStarted(str(source)))
            data = load_dataset(
                source,
                progress=lambda done, total: self.post_message(self.LoadProgressed(done, total)),
                cancelled=lambda: worker.is_cancelled,
            )
            stats = dataset_stats(data)
            blank = {s: blank_mask(data.splits[s].images) for s in ("train", "test")}
        except LoadCancelled:
            return
        except FerError as exc:
            self.post_message(self.LoadFailed(str(exc)))
            return
        self.post_message(self.DataLoaded(data, stats, blank))

    @on(LoadStarted)
    def _started(self, message: LoadStarted) -> None:
        self.query_one("#dataset-loading-label", Label).update(
            Text(
                f"Loading {message.source} (the first time decodes every image, then it is "
                f"cached)..."
            )
        )

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "dataset" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._show_error(
                f"Unexpected error while loading the data: {error!r}. "
                f"Please report it with the output of `fer-tui stats`."
            )

    @on(LoadProgressed)
    def _progressed(self, message: LoadProgressed) -> None:
        self.query_one("#dataset-progress", ProgressBar).update(
            total=message.total, progress=message.done
        )

    @on(LoadFailed)
    def _failed(self, message: LoadFailed) -> None:
        self._show_error(message.message)

    def _show_error(self, text: str) -> None:
        panel = Text()
        panel.append("Cannot load the dataset\n\n", style="bold")
        panel.append(text)
        panel.append(
            "\n\nFix the data (or pass --data PATH) and press l to load again.", style="italic"
        )
        self.query_one("#dataset-error", Static).update(panel)
        self.remove_class("-loading", "-ready")
        self.add_class("-failed")

    @on(DataLoaded)
    def _loaded(self, message: DataLoaded) -> None:
        self.data, self.stats, self._blank = message.data, message.stats, message.blank
        data, stats = message.data, message.stats
        total = sum(len(data.splits[s]) for s in ("train", "test"))
        how = "from cache" if data.from_cache else "decoded, cached"
        self.query_one("#dataset-source", Static).update(
            Text(
                f"{data.source} · {data.format} · {total:,} images · {how} · "
                f"fingerprint {data.fingerprint}"
            )
        )
        self.query_one(ClassBars).counts = {
            name: split["classes"] for name, split in stats["splits"].items()
        }
        self.query_one("#dataset-summary", Static).update(self._summary(stats))
        n_problems = len(stats["problems"])
        self.query_one("#problems-title", Label).update(f"Problems ({n_problems})")
        self.query_one(ProblemList).problems = stats["problems"]
        if not len(data.splits["train"]):
            self.sample_split = "test"
        self._show_faces()
        self.remove_class("-loading", "-failed")
        self.add_class("-ready")

    def _summary(self, stats: dict[str, Any]) -> Text:
        imb = stats["imbalance"]
        text = Text()
        text.append("Imbalance (train) ", style="bold")
        if imb["ratio"] is None:
            text.append(f"undefined: {imb['smallest']} has no images", style="bold red")
        else:
            text.append(f"{imb['ratio']:.1f}x", style="bold")
            text.append(
                f" largest/smallest = {imb['largest']} "
                f"{100 * imb['share'][imb['largest']]:.1f}% / {imb['smallest']} "
                f"{100 * imb['share'][imb['smallest']]:.1f}%"
            )
        text.append("\nPixels ", style="bold")
        if stats["pixel_mean"] is not None:
            text.append(
                f"mean {stats['pixel_mean']:.1f}, std {stats['pixel_std']:.1f} "
                f"on 0-255 ({stats['pixel_mean'] / 255:.3f} / "
                f"{stats['pixel_std'] / 255:.3f} on 0-1), train+test"
            )
        dup = stats["duplicates_across_splits"]
        text.append("\nDuplicates ", style="bold")
        within = stats["duplicates_within_splits"]
        text.append(
            f"{dup:,} test images copy a train image exactly · repeats: "
            f"{within['train']:,} in train, {within['test']:,} in test"
        )
        return text

    # --- sample faces ----------------------------------------------------------------------

    def _show_faces(self) -> None:
        if self.data is None:
            return
        from fer_tui.data.stats import sample_indices

        split = self.data.splits[self.sample_split]
        picks = sample_indices(
            split, SAMPLES_PER_CLASS, seed=self.seed, blank=self._blank.get(self.sample_split)
        )
        self.query_one(FaceGrid).set_faces(
            [(cls, [split.images[i] for i in picks[c]]) for c, cls in enumerate(CLASSES)]
        )
        self.query_one("#faces-title", Label).update(
            f"Sample faces ({self.sample_split}, seed {self.seed})"
        )
        self._fit_face_rows()

    def _fit_face_rows(self) -> None:
        # one row of faces on a small terminal keeps counts, faces and problems on one page
        self.query_one(FaceGrid).rows = 1 if self.size.height < 36 else 2

    def on_resize(self, event: Resize) -> None:
        self._fit_face_rows()

    def watch_seed(self) -> None:
        self._show_faces()

    def watch_sample_split(self) -> None:
        self._show_faces()

    def action_reshuffle(self) -> None:
        self.seed += 1

    def action_toggle_split(self) -> None:
        if self.data is None:
            return
        other = "test" if self.sample_split == "train" else "train"
        if len(self.data.splits[other]):
            self.sample_split = other
        else:
            self.notify(f"No {other} images to show", severity="warning")

    def action_reload(self) -> None:
        self.remove_class("-ready", "-failed")
        self.add_class("-loading")
        self.query_one("#dataset-progress", ProgressBar).update(total=None, progress=0)
        self.load_data()
