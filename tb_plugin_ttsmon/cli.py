"""The `ttsmon` command line (issue 6 builds it out)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `ttsmon` console script."""
    print("ttsmon: no subcommands yet", file=sys.stderr)
    return 2
