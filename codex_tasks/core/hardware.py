"""GPUs through NVML (`pynvml`, where present): what is installed, and how busy it is.

Both answers are empty on a machine without an NVIDIA driver or GPU, never an error: they feed
provenance records and metrics, which must not fail a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _with_nvml(read: Callable[[Any], T], empty: T) -> T:
    """`read(pynvml)` between nvmlInit and nvmlShutdown; `empty` when NVML is missing or fails."""
    try:
        import pynvml
    except ImportError:
        return empty
    try:
        pynvml.nvmlInit()
    except Exception:  # no NVIDIA driver here
        return empty
    try:
        return read(pynvml)
    except Exception:  # a GPU that went away, a driver that answers partly
        return empty
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def gpus() -> list[dict[str, Any]]:
    """Each GPU: index, name, total memory (bytes), driver version."""

    def read(nvml: Any) -> list[dict[str, Any]]:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        out = []
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            out.append({"index": i, "name": _text(nvml.nvmlDeviceGetName(h)),
                        "memory_total": int(nvml.nvmlDeviceGetMemoryInfo(h).total), "driver": driver})
        return out

    return _with_nvml(read, [])


def gpu_usage() -> dict[str, float]:
    """For each GPU, now: `gpu_{i}_utilization_percentage`, `gpu_{i}_memory_usage_megabytes` and
    `gpu_{i}_memory_usage_percentage` (MLflow's system-metric names)."""

    def read(nvml: Any) -> dict[str, float]:
        out: dict[str, float] = {}
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            out[f"gpu_{i}_utilization_percentage"] = float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            out[f"gpu_{i}_memory_usage_megabytes"] = mem.used / 1e6
            out[f"gpu_{i}_memory_usage_percentage"] = 100.0 * mem.used / mem.total if mem.total else 0.0
        return out

    return _with_nvml(read, {})
