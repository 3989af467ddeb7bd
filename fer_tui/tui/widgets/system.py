"""SystemLine: GPU utilisation and memory when there is a GPU, CPU and RAM otherwise.

Never imports torch: NVML through nvidia-ml-py when installed, else one `nvidia-smi` query,
else psutil. Shown, not required: any failure just says the figures are unavailable.
"""

from __future__ import annotations

import shutil
import subprocess

from textual import work
from textual.widgets import Static

GIB = 1024**3


def _gpu_text(index: int, name: str, util: object, used_gib: float, total_gib: float) -> str:
    return f"GPU{index} {name} {util}% · {used_gib:.1f}/{total_gib:.1f} GiB"


def gpu_summary() -> str | None:
    """`GPU0 NVIDIA H200 87% · 12.3/139.8 GiB` for each GPU, or None without one."""
    try:
        import pynvml  # nvidia-ml-py, optional

        pynvml.nvmlInit()
        try:
            parts = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(h)
                name = name.decode() if isinstance(name, bytes) else name
                util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                parts.append(_gpu_text(i, name, util, mem.used / GIB, mem.total / GIB))
            return "  ".join(parts) or None
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # absent module or no driver: fall back to nvidia-smi
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(
        [
            "nvidia-smi",
            "--query-gpu=name,utilization.gpu,memory.used,memory.total",
            "--format=csv,noheader,nounits",
        ],
        capture_output=True,
        text=True,
        timeout=3,
        check=True,
    ).stdout
    parts = []
    for i, row in enumerate(line for line in out.splitlines() if line.strip()):
        name, util, used, total = (x.strip() for x in row.split(","))
        parts.append(_gpu_text(i, name, util, float(used) / 1024, float(total) / 1024))
    return "  ".join(parts) or None


def cpu_summary() -> str:
    """`CPU 45% of 2 cores · RAM 3.1/15.6 GiB · load 1.20`."""
    import os

    import psutil

    mem = psutil.virtual_memory()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    text = (
        f"CPU {psutil.cpu_percent(interval=None):.0f}% of {psutil.cpu_count()} cores · "
        f"RAM {(mem.total - mem.available) / GIB:.1f}/{mem.total / GIB:.1f} GiB"
    )
    return text + (f" · load {load:.2f}" if load is not None else "")


class SystemLine(Static):
    """One line of machine figures, refreshed every few seconds off the UI thread."""

    DEFAULT_CSS = """
    SystemLine { height: 1; color: $text-muted; padding: 0 1; }
    """

    def __init__(self, interval: float = 2.0, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.interval = interval

    def on_mount(self) -> None:
        self.measure()
        self.set_interval(self.interval, self.measure)

    @work(thread=True, exclusive=True, group="system", exit_on_error=False)
    def measure(self) -> None:
        try:
            text = gpu_summary() or cpu_summary()
        except Exception as exc:  # figures are a nicety: say why they are missing
            text = f"system figures unavailable ({exc.__class__.__name__})"
        self.app.call_from_thread(self.update, text)
