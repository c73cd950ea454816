"""Time for the TTS Monitor tab to draw 13 charts of 5000 points each.

Headless Chromium loads the built tab (`tb_plugin_ttsmon/static/`) from a
mocked plugin API (a local HTTP server, no TensorBoard): one run with one GPU,
9 system charts (the training step at each sample has its own) and 4 training
charts, 5000 points per series. The mock answers every `series` request
with all 5000 points (no server-side downsampling), so each chart really
draws 5000 points. The figure is the time from navigation start
to the tab's first complete render (`window.__ttsmonRendered`, set after the
frame that shows every chart), median over several page loads.

Usage: python bench/frontend_render.py [--runs 7] [--points 5000]
Needs /usr/bin/chromium and the playwright package. Prints figures only.
"""

from __future__ import annotations

import argparse
import http.server
import json
import math
import os
import statistics
import sys
import threading
import urllib.parse
from typing import ClassVar

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(os.path.dirname(HERE), "tb_plugin_ttsmon", "static")
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from browserkit import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

GOAL_S = 1.0
RUN = "bench-run"

# (tag, unit, kind, value at point i of n)
SERIES = [
    ("system/cpu_percent", "%", "rate", lambda i, n: 50 + 40 * math.sin(i / 50)),
    ("system/memory_used_bytes", "B", "gauge", lambda i, n: 8e9 + 2e9 * math.sin(i / 300)),
    ("gpu/0/utilization_percent", "%", "rate", lambda i, n: 80 + 20 * math.sin(i / 7)),
    ("gpu/0/memory_used_bytes", "B", "gauge", lambda i, n: 6e10 + 1e9 * math.cos(i / 90)),
    ("gpu/0/temperature_c", "°C", "gauge", lambda i, n: 70 + 5 * math.sin(i / 200)),
    ("gpu/0/power_w", "W", "gauge", lambda i, n: 300 + 80 * math.sin(i / 13)),
    ("system/disk_read_bytes_per_s", "B/s", "rate", lambda i, n: abs(5e7 * math.sin(i / 17))),
    ("system/net_recv_bytes_per_s", "B/s", "rate", lambda i, n: abs(2e6 * math.cos(i / 23))),
    ("train/loss", "", "event", lambda i, n: 3 * math.exp(-i / 1500) + 0.05 * math.sin(i)),
    ("train/learning_rate", "", "event", lambda i, n: 1e-3 * 0.9995**i),
    ("train/gradient_norm", "", "event", lambda i, n: 1 + abs(math.sin(i / 5))),
    ("train/steps_per_s", "steps/s", "rate", lambda i, n: 4 + 0.5 * math.sin(i / 40)),
    ("sampler/training_step", "step", "gauge", lambda i, n: float(i)),
]


def build_mock(points: int) -> dict[str, bytes]:
    """Route path (with query) -> JSON body, for every request the tab makes."""
    t0 = 1_795_000_000.0
    rows: dict[str, list[list[float]]] = {}
    for tag, _unit, _kind, fn in SERIES:
        training = tag.startswith("train/")
        rows[tag] = [
            [t0 + i, i if training else int((t0 + i) * 1000), round(fn(i, points), 6)]
            for i in range(points)
        ]
    facts = {
        "hostname": "bench-host",
        "versions": {"tensorflow": "2.21.0"},
        "host": {"cpu_count_logical": 32, "memory_total_bytes": 256 * 2**30},
        "nvml": {"available": True, "devices": [{"index": 0, "name": "NVIDIA H200"}]},
    }
    last = t0 + points - 1
    runs = {
        "runs": [
            {
                "run": RUN,
                "hostname": "bench-host",
                "started_at_s": t0,
                "last_wall_time_s": last,
                "restarts": 0,
                "groups": ["gpu", "sampler", "system", "train"],
                "facts": facts,
            }
        ]
    }
    tags = {
        "run": RUN,
        "tags": [
            {"tag": t, "group": t.split("/")[0], "unit": u, "kind": k, "description": ""}
            for t, u, k, _ in SERIES
        ],
    }
    overview = {
        "run": RUN,
        "facts": facts,
        "model": None,
        "latest": {
            t: {"value": r[-1][2], "unit": u, "wall_time_s": r[-1][0], "step": r[-1][1]}
            for (t, u, _k, _f), r in zip(SERIES, rows.values())
            if not t.startswith("train/")
        },
        "sample_count": points,
        "first_wall_time_s": t0,
        "last_wall_time_s": last,
        "duration_s": last - t0,
        "training": {"last_step": points - 1, "loss": rows["train/loss"][-1][2]},
        "inference": {"requests": 0},
    }
    units = {t: (u, k) for t, u, k, _ in SERIES}
    return {
        "runs": json.dumps(runs).encode(),
        "tags": json.dumps(tags).encode(),
        "overview": json.dumps(overview).encode(),
        "_rows": json.dumps({t: rows[t] for t in rows}).encode(),
        "_units": json.dumps(units).encode(),
    }


def series_body(mock: dict[str, bytes], query: str) -> bytes:
    q = urllib.parse.parse_qs(query)
    rows = json.loads(mock["_rows"])
    units = json.loads(mock["_units"])
    out = {}
    for tag in q.get("tag", []):
        unit, kind = units[tag]
        out[tag] = {"unit": unit, "kind": kind, "total": len(rows[tag]), "rows": rows[tag]}
    return json.dumps({"run": RUN, "points": int(q["points"][0]), "series": out}).encode()


ENTRY_HTML = (
    b'<!DOCTYPE html><head><base href="plugin/ttsmon/" /></head>'
    b'<body><script type="module">import("./index.js").then((m) => void m.render());'
    b"</script></body>"
)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the entry page, the built tab and the mocked API."""

    mock: ClassVar[dict[str, bytes]] = {}
    cache: ClassVar[dict[str, bytes]] = {}

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        prefix = "/data/plugin/ttsmon/"
        name = url.path[len(prefix) :] if url.path.startswith(prefix) else None
        if url.path == "/data/plugin_entry.html":
            self._send(200, "text/html", ENTRY_HTML)
        elif name in ("index.js", "static/index.css"):
            with open(os.path.join(STATIC, os.path.basename(name)), "rb") as f:
                body = f.read()
            self._send(200, "text/javascript" if name.endswith(".js") else "text/css", body)
        elif name in ("runs", "tags", "overview"):
            self._send(200, "application/json", self.mock[name])
        elif name == "series":
            body = self.cache.get(url.query)
            if body is None:
                body = self.cache[url.query] = series_body(self.mock, url.query)
            self._send(200, "application/json", body)
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--points", type=int, default=5000)
    args = parser.parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("skipped: the playwright package is not installed")
        return 0
    if not os.path.exists(CHROMIUM):
        print(f"skipped: {CHROMIUM} is not installed")
        return 0
    if not os.path.exists(os.path.join(STATIC, "index.js")):
        print("skipped: build the tab first (cd frontend && npm ci && npm run build)")
        return 0

    _Handler.mock = build_mock(args.points)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_address[1]}"

    totals: list[float] = []
    after_data: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(args.runs):
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                page.goto(f"{origin}/data/plugin_entry.html?name=ttsmon")
                page.wait_for_function("window.__ttsmonRendered !== undefined", timeout=60_000)
                charts = page.evaluate("document.querySelectorAll('.chart-card canvas').length")
                if charts != 13:
                    print(f"error: {charts} charts drawn, expected 13", file=sys.stderr)
                    return 1
                rendered, data_end = page.evaluate(
                    """[window.__ttsmonRendered,
                        Math.max(...performance.getEntriesByType("resource")
                          .filter((e) => e.name.includes("/series?"))
                          .map((e) => e.responseEnd))]"""
                )
                totals.append(rendered / 1000.0)
                after_data.append((rendered - data_end) / 1000.0)
                context.close()
        finally:
            browser.close()
            server.shutdown()

    median = statistics.median(totals)
    print(
        f"frontend render, 13 charts x {args.points} points "
        f"(headless Chromium, local mock API, no downsampling), {len(totals)} page loads"
    )
    print(f"  navigation -> all charts drawn: median {median:.3f} s")
    print(f"  min {min(totals):.3f} s, max {max(totals):.3f} s, first load {totals[0]:.3f} s")
    print(f"  of which last series response -> drawn: median {statistics.median(after_data):.3f} s")
    print(f"  goal < {GOAL_S:.1f} s: {'met' if median < GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
