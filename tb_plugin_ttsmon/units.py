"""Numbers and amounts as people read them, in one place for every consumer.

Findings, anomalies, alert messages, the HTML report and the tab all say
sizes the same way: bytes in binary multiples (KiB, MiB, GiB, TiB), which is
what memory is sold and reported in (a "16 GB" GPU holds 16 GiB; NVML, the
kernel and TensorFlow count in 1024s). The tab's TypeScript twin is
``frontend/src/format.ts``.

Pure Python, no dependencies: the recorder and the read side both import it.
"""

from __future__ import annotations

import math

# Binary multiples, largest first.
BINARY_BYTE_UNITS: tuple[tuple[str, float], ...] = (
    ("PiB", 1024.0**5),
    ("TiB", 1024.0**4),
    ("GiB", 1024.0**3),
    ("MiB", 1024.0**2),
    ("KiB", 1024.0),
)

UNIT_BYTES = "B"


def non_finite_name(x: float) -> str:
    """ "NaN", "Infinity" or "-Infinity": JSON's and JavaScript's spellings."""
    if math.isnan(x):
        return "NaN"
    return "Infinity" if x > 0 else "-Infinity"


def format_number(x: float, digits: int = 3) -> str:
    """`x` for a sentence: `digits` significant digits, no exponent for everyday sizes."""
    x = float(x)
    if not math.isfinite(x):
        return non_finite_name(x)
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.{digits}g}" if abs(x) < 10**digits else f"{x:.0f}"
    return f"{x:.{digits}g}"


def format_bytes(x: float, digits: int = 3) -> str:
    """`x` bytes in binary multiples: ``format_bytes(3 * 2**30) == "3 GiB"``."""
    x = float(x)
    if not math.isfinite(x):
        return non_finite_name(x)
    for name, div in BINARY_BYTE_UNITS:
        if abs(x) >= div:
            return f"{format_number(x / div, digits)} {name}"
    return f"{x:.0f} B"


def format_amount(x: float, unit: str, digits: int = 3) -> str:
    """`x` with its unit (bytes in binary multiples); ``format_amount(97.5, "%") == "97.5 %"``."""
    if unit == UNIT_BYTES:
        return format_bytes(x, digits)
    return f"{format_number(x, digits)} {unit}".rstrip()


def format_duration(seconds: float) -> str:
    """A length of time as people say it: ``"850 ms"``, ``"42 s"``, ``"4 m 05 s"``, ``"2 h 10 m"``.

    The tab's ``formatDuration`` (``frontend/src/format.ts``) writes the same.
    """
    x = float(seconds)
    if not math.isfinite(x):
        return non_finite_name(x)
    a = abs(x)
    if a < 1:
        out = f"{format_number(a * 1000)} ms"
    elif a < 60:
        out = f"{format_number(a)} s"
    elif a < 3600:
        out = f"{int(a // 60)} m {int(a % 60):02d} s"
    elif a < 86400:
        out = f"{int(a // 3600)} h {int(a % 3600 // 60):02d} m"
    else:
        out = f"{int(a // 86400)} d {int(a % 86400 // 3600)} h"
    return f"\u2212{out}" if x < 0 else out
