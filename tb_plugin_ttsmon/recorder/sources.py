"""The interface between the sampler thread and the things it samples."""

from __future__ import annotations

from typing import Any, Protocol


class Source(Protocol):
    """Something the sampler thread reads once per tick.

    Sources are created on the training thread but only ever called from the
    sampler thread, one call at a time. They initialise lazily in the first
    `sample()` and never raise: each failure is reported to the
    `faults.FaultLog` they were given, and the rest of the sample goes on.
    """

    name: str

    def sample(self, now_s: float, out: dict[str, float]) -> None:
        """Adds this source's values (tag -> value) for wall time `now_s` to `out`."""

    def facts(self) -> dict[str, Any]:
        """Run-level facts (device names, limits, versions) for the run facts document."""
        return {}

    def close(self) -> None:
        """Releases what the source holds (NVML handles, open files)."""
