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

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds this source's values (tag -> value) to `out`.

        Args:
          monotonic_s: `time.monotonic()` at the start of the sample. Rates
            divide by differences of it, never of wall time, which jumps
            when the clock is set (NTP, a suspended VM).
          out: Tag -> value, shared by every source of the sample.
        """

    def facts(self) -> dict[str, Any]:
        """Run-level facts (device names, limits, versions) for the run facts document."""
        return {}

    def close(self) -> None:
        """Releases what the source holds (NVML handles, open files)."""
