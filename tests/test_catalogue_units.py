"""The tab says amounts the way tb_plugin_ttsmon/units.py does.

Findings, alerts and the report are written by units.py; the tab's legends,
overview and axes by frontend/src/format.ts. The real format.ts is bundled
with the frontend's pinned esbuild and run by Node.js, and its output is
compared with units.py for the same values: bytes in binary multiples with the
same unit names, and a space before "%".
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tb_plugin_ttsmon import units

FRONTEND = Path(__file__).parent.parent / "frontend"
ESBUILD = FRONTEND / "node_modules" / "esbuild"

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed"),
    pytest.mark.skipif(
        not ESBUILD.exists(), reason="frontend/node_modules is missing (cd frontend && npm ci)"
    ),
]

# Bundles format.ts in memory and evaluates the calls given on stdin.
_RUNNER = """
import * as esbuild from "esbuild";
import { readFileSync } from "node:fs";
const out = await esbuild.build({
  entryPoints: ["src/format.ts"], bundle: true, format: "esm", write: false, logLevel: "error",
});
const mod = await import("data:text/javascript;base64," +
  Buffer.from(out.outputFiles[0].text).toString("base64"));
const calls = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(calls.map(([fn, ...args]) => mod[fn](...args))));
"""


def _ts(calls: list[list[object]]) -> list[str]:
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", _RUNNER],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        cwd=FRONTEND,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


GIB = 1024**3
# Sizes as memory is reported: whole and half multiples of each binary unit.
SIZES = [0, 512, 1536, 4096, 2.5 * 1024**2, 3 * GIB, 2.5 * GIB, 80 * GIB, 1.5 * 1024**4]


def test_bytes_in_binary_units_as_units_py_says_them() -> None:
    got = _ts([["formatBytes", x, 3] for x in SIZES])
    assert got == [units.format_bytes(x) for x in SIZES]
    assert got[5] == "3 GiB"


def test_values_with_units_as_units_py_says_them() -> None:
    cases = [(97.5, "%"), (3 * GIB, "B"), (312.0, "W"), (63.0, "°C"), (12.5, "ms")]
    got = _ts([["formatValue", x, unit, 3] for x, unit in cases])
    assert got == [units.format_amount(x, unit) for x, unit in cases]


def test_rates_of_bytes_in_binary_units() -> None:
    (got,) = _ts([["formatValue", 150 * 1024**2, "B/s", 3]])
    assert got == f"{units.format_bytes(150 * 1024**2)}/s" == "150 MiB/s"
