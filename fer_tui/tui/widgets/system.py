"""SystemLine: GPU utilisation and memory when there is a GPU, CPU and RAM otherwise.

Never imports torch: NVML through nvidia-ml-py when installed, else one `nvidia-smi` query,
else psutil. Shown, not required: a GPU query that fails, hangs or returns no figures falls back
to the CPU and RAM line, and a single odd field (`[N/A]`, `[Not Supported]`) shows as N/A.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
from typing import Any

from textual import work
from textual.widgets import Static

GIB = 1024**3
#: seconds before a hung `nvidia-smi` is given up on (the line refreshes every 2 s)
SMI_TIMEOUT_S = 3.0
SMI_QUERY = (
    "nvidia-smi",
    "--query-gpu=name,utilization.gpu,memory.used,memory.total",
    "--format=csv,noheader,nounits",
)

#: one GPU: name, utilisation %, used GiB, total GiB (None where the driver has no figure)
GpuRow = tuple[str, float | None, float | None, float | None]

_nvml_lock = threading.Lock()
_nvml_state: Any = None  # None: not tried yet; False: unusable here; else the pynvml module


def _number(value: Any) -> float | None:
    """A figure, or None for `[N/A]`, `[Not Supported]` and anything else that is not one."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _gpu_text(index: int, row: GpuRow) -> str:
    name, util, used, total = row
    # utilisation is the share of time any kernel ran, not how full the SMs are
    util_text = f"{util:.0f}%" if util is not None else "N/A"
    mem_text = (
        f"{used:.1f}/{total:.1f} GiB" if used is not None and total is not None else "memory N/A"
    )
    return f"GPU{index} {name} {util_text} · {mem_text}"


def _nvml() -> Any | None:
    """pynvml, initialised once per process; None when it is absent or finds no driver.

    Never shut down: the line polls until the app exits, and the driver lets go at exit.
    """
    global _nvml_state
    with _nvml_lock:
        if _nvml_state is None:
            try:
                import pynvml  # nvidia-ml-py, optional

                pynvml.nvmlInit()
            except Exception:  # absent module, no driver, no device
                _nvml_state = False
            else:
                _nvml_state = pynvml
        return _nvml_state or None


def _nvml_rows(nvml: Any) -> list[GpuRow]:
    rows: list[GpuRow] = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        name = nvml.nvmlDeviceGetName(h)
        name = name.decode() if isinstance(name, bytes) else str(name)
        util = used = total = None
        try:  # NVMLError_NotSupported on some devices and MIG slices
            util = _number(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
        except Exception:
            pass
        try:
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            used, total = _number(mem.used / GIB), _number(mem.total / GIB)
        except Exception:
            pass
        rows.append((name, util, used, total))
    return rows


def _smi_rows() -> list[GpuRow]:
    """One `nvidia-smi` query; no rows when it fails ("No devices were found") or hangs."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(
            SMI_QUERY, capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):  # not runnable, or killed at the timeout
        return []
    if done.returncode != 0:
        return []
    rows: list[GpuRow] = []
    for line in done.stdout.splitlines():
        fields = [x.strip() for x in line.rsplit(",", 3)]
        if len(fields) != 4:
            continue
        name, util, used, total = fields
        used_mib, total_mib = _number(used), _number(total)
        rows.append(
            (
                name,
                _number(util),
                used_mib / 1024 if used_mib is not None else None,
                total_mib / 1024 if total_mib is not None else None,
            )
        )
    return rows


def gpu_summary() -> str | None:
    """`GPU0 NVIDIA H200 87% · 12.3/139.8 GiB` for each GPU, or None without one (or without
    a single figure for any GPU)."""
    rows: list[GpuRow] = []
    nvml = _nvml()
    if nvml is not None:
        try:
            rows = _nvml_rows(nvml)
        except Exception:  # the driver went away: ask nvidia-smi instead
            rows = []
    if not rows:
        rows = _smi_rows()
    if not any(v is not None for row in rows for v in row[1:]):
        return None
    return "  ".join(_gpu_text(i, row) for i, row in enumerate(rows))


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


def system_summary() -> str:
    """The GPU line when a GPU answers with figures, else the CPU and RAM line."""
    return gpu_summary() or cpu_summary()


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
            text = system_summary()
        except Exception as exc:  # figures are a nicety: say why they are missing
            text = f"system figures unavailable ({exc.__class__.__name__})"
        self.app.call_from_thread(self.update, text)
