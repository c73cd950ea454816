"""What every part of the analytics shares: the series protocol, severities, helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tb_plugin_ttsmon.units import format_number

SEVERITIES = ("critical", "warning", "info")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class SeriesLike(Protocol):
    """What the analytics read from a series (the read layer's ``Series`` fits)."""

    wall_time: np.ndarray  # float64 seconds since the epoch
    step: np.ndarray  # int64
    value: np.ndarray  # float64
    unit: str


@dataclasses.dataclass
class Columns:
    """A series as numpy columns, for callers without a read-layer ``Series``."""

    wall_time: np.ndarray
    step: np.ndarray
    value: np.ndarray
    unit: str = ""

    @classmethod
    def of(
        cls,
        wall_time_s: Sequence[float] | np.ndarray,
        value: Sequence[float] | np.ndarray,
        step: Sequence[int] | np.ndarray | None = None,
        unit: str = "",
    ) -> Columns:
        """Columns from array-likes; `step` defaults to 0, 1, 2, ..."""
        w = np.asarray(wall_time_s, dtype=np.float64)
        v = np.asarray(value, dtype=np.float64)
        s = np.arange(len(v), dtype=np.int64) if step is None else np.asarray(step, np.int64)
        return cls(w, s, v, unit)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One plain-language statement about a run, with the numbers it cites."""

    id: str
    severity: str
    title: str
    text: str
    numbers: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-able data."""
        return dataclasses.asdict(self)


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (inclusive) ends of the runs of True in a boolean array."""
    if not len(mask):
        empty = np.zeros(0, np.int64)
        return empty, empty
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def finite_values(s: SeriesLike | None) -> np.ndarray:
    """The finite values of `s` (none for a missing series)."""
    if s is None:
        return np.zeros(0)
    return s.value[np.isfinite(s.value)]


def max_of(s: SeriesLike | None) -> float | None:
    """The largest finite value of `s` when it is positive (a usable ceiling), else None."""
    v = finite_values(s)
    if not len(v):
        return None
    top = float(v.max())
    return top if top > 0 else None


def fixed(x: float, decimals: int = 0) -> str:
    """`x` with `decimals` decimals for a sentence ("97 %", "7.3x"); a huge one
    (a hostile 3e38) in a few significant digits instead of 39."""
    x = float(x)
    return f"{x:.{decimals}f}" if abs(x) < 1e6 else format_number(x)
