"""A background sampler of CPU/RAM (psutil) and GPU utilisation/memory (pynvml, where present).

The names are MLflow's own system-metric names (`mlflow.system_metrics`), so that, logged under
`system/`, they fill MLflow's System metrics tab.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from codex_tasks.core.hardware import gpu_usage


def sample_system() -> dict[str, float]:
    """One reading: CPU %, RAM used (MB and %), this process's RSS (MB), and per-GPU figures."""
    import psutil

    vm = psutil.virtual_memory()
    out = {
        "cpu_utilization_percentage": psutil.cpu_percent(interval=None),
        "system_memory_usage_megabytes": vm.used / 1e6,
        "system_memory_usage_percentage": vm.percent,
        "process_rss_megabytes": psutil.Process().memory_info().rss / 1e6,
    }
    out.update(gpu_usage())
    return out


class SystemSampler:
    """Calls `report(values)` every `every` seconds on a daemon thread until `stop()`."""

    def __init__(self, every: float, report: Callable[[dict[str, float]], Any]) -> None:
        self.every = every
        self.report = report
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.every <= 0:
            return
        sample_system()  # primes psutil's CPU counter
        self._thread = threading.Thread(target=self._loop, name="system-metrics", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.report(sample_system())
            except Exception:  # a sampler must never break training
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
