"""The tab's own request cycle: recorded from Chromium, replayed by simulated viewers.

`record_cycle` opens the TTS Monitor tab in Debian's Chromium (through
Playwright), with the given runs selected, and records every request the tab
makes to our routes: method, URL, POST body, and whether it carried
``If-None-Match`` (set by the tab, or by the browser's HTTP cache when it
revalidates). The requests are labelled with the tab's own refresh counter
(``window.__ttsmon.refreshes``, which the tab increments as a refresh starts),
read by a ``fetch`` wrapper in the page, so a cycle is exactly what one refresh
of the tab asked for, whatever the tab's code is today.

`Viewer` replays a recorded cycle the way a browser would: the requests of
one wave (those the tab sent before any earlier answer arrived) in parallel,
at most 6 at a time (Chromium's connections per host), and each URL sent
with ``If-None-Match`` holding the ETag this viewer last got for it, where
the tab's request carried one.

Nothing here asserts on time; `bench/load.py` prints the figures.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.join(REPO_ROOT, "tests")
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# "HTTP/1.1 200 OK\r\n": urllib keeps the headers but not the status line.
_STATUS_LINE_BYTES = 17
# Chromium opens at most this many HTTP/1.1 connections to one host.
BROWSER_CONNECTIONS_PER_HOST = 6
# Only these request headers of the tab are replayed (the rest are the
# browser's own, e.g. User-Agent, Sec-Fetch-*); Accept-Encoding is always gzip.
REPLAYED_HEADERS = ("accept", "content-type")
_OUR_ROUTES = "data/plugin/ttsmon/"
_STATIC = ("index.js", "static/")

# Runs in every frame before the page's scripts: selects the runs (the tab
# reads its selection from localStorage) and logs each fetch with the tab's
# refresh counter at the time it was called.
_INIT_SCRIPT = """
(() => {
  const selected = %s;
  if (selected !== null) {
    try { localStorage.setItem("ttsmon.selected", JSON.stringify(selected)); } catch (e) {}
  }
  const log = [];
  window.__benchFetchLog = log;
  const orig = window.fetch;
  if (!orig) return;
  window.fetch = function (input, init) {
    try {
      const isRequest = input instanceof Request;
      const url = new URL(isRequest ? input.url : String(input), document.baseURI).href;
      const method = ((init && init.method) || (isRequest ? input.method : "GET")).toUpperCase();
      const stats = window.__ttsmon;
      log.push({ url, method, cycle: stats ? stats.refreshes : 0 });
    } catch (e) {}
    return orig.apply(this, arguments);
  };
})();
"""


@dataclass(frozen=True)
class Call:
    """One request of the tab, replayable against any TensorBoard serving the same logdir."""

    method: str
    path: str  # relative to TensorBoard's root URL, e.g. "data/plugin/ttsmon/runs"
    body: bytes | None
    headers: tuple[tuple[str, str], ...]
    conditional: bool  # it carried If-None-Match
    wave: int  # requests of one wave were all sent before any answer of the wave came


@dataclass(frozen=True)
class Cycle:
    """What the tab asked for: its first load, then each auto-refresh."""

    first: tuple[Call, ...]
    refreshes: tuple[tuple[Call, ...], ...]
    first_render_s: float  # page open to the tab's first full render, in Chromium
    first_wire_bytes: int  # our routes' answers (headers and body) in the first load, in Chromium
    refresh_wire_bytes: tuple[int, ...]

    @property
    def refresh(self) -> tuple[Call, ...]:
        """The steady idle refresh: the last one recorded."""
        return self.refreshes[-1]


def _waves(starts_s: Sequence[float], ends_s: Sequence[float]) -> list[int]:
    """Wave of each request: one more than the latest wave answered before it was sent."""
    waves: list[int] = []
    for i, start in enumerate(starts_s):
        before = [waves[j] for j in range(i) if ends_s[j] <= start]
        waves.append(max(before) + 1 if before else 0)
    return waves


def record_cycle(
    tb_url: str,
    selected_runs: Sequence[str] | None,
    *,
    refreshes: int = 2,
    timeout_s: float = 240.0,
) -> Cycle:
    """Opens the tab in Chromium and records its first load and `refreshes` auto-refreshes.

    Args:
      tb_url: TensorBoard's root URL (ending in "/").
      selected_runs: The runs to select (stored as the tab's saved
        selection), or None for the tab's default.
      refreshes: Auto-refreshes to record after the first full render.
      timeout_s: Longest wait for the first render and for each refresh.

    Raises:
      RuntimeError: Chromium or Playwright is missing, or the tab did not
        render or refresh in time.
    """
    from browserkit import CHROMIUM, CHROMIUM_ARGS  # tests/browserkit.py

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:  # pragma: no cover - depends on the machine
        raise RuntimeError("the playwright Python package is needed to record the tab") from err
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"Chromium ({CHROMIUM}, Debian's chromium package) is needed")

    seen: list[dict[str, Any]] = []
    by_request: dict[int, dict[str, Any]] = {}

    def ours(url: str) -> bool:
        if not url.startswith(tb_url + _OUR_ROUTES):
            return False
        rest = url[len(tb_url + _OUR_ROUTES) :]
        return not rest.startswith(_STATIC)

    def on_request(req: Any) -> None:
        if ours(req.url):
            entry = {"req": req, "start_s": time.monotonic(), "end_s": None}
            seen.append(entry)
            by_request[id(req)] = entry

    def on_done(req: Any) -> None:
        entry = by_request.get(id(req))
        if entry is not None:
            entry["end_s"] = time.monotonic()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 2600})
            selection = json.dumps(list(selected_runs)) if selected_runs is not None else "null"
            context.add_init_script(_INIT_SCRIPT % selection)
            page = context.new_page()
            page.on("request", on_request)
            page.on("requestfinished", on_done)
            page.on("requestfailed", on_done)
            t0 = time.monotonic()
            page.goto(tb_url + "#ttsmon")
            iframe = page.wait_for_selector(
                'iframe[src*="plugin_entry.html?name=ttsmon"]', timeout=timeout_s * 1000
            )
            frame = iframe.content_frame() if iframe is not None else None
            if frame is None:
                raise RuntimeError("the tab's iframe has no frame")
            frame.wait_for_function(
                "document.body && document.body.dataset.rendered === '1'",
                timeout=timeout_s * 1000,
            )
            first_render_s = time.monotonic() - t0
            # The tab never runs two refreshes at once, so once refresh k + 2
            # has started (the counter goes up as one starts), refresh k + 1
            # is complete, lazy requests included. An idle refresh of today's
            # tab renders nothing, so the render counter cannot tell.
            frame.wait_for_function(
                f"window.__ttsmon && window.__ttsmon.refreshes >= {refreshes + 2}",
                timeout=timeout_s * 1000 * (refreshes + 1),
            )
            log = frame.evaluate("window.__benchFetchLog")
            for entry in seen:
                req = entry["req"]
                entry["headers"] = req.all_headers()
                entry["body"] = req.post_data_buffer
                response = req.response()
                entry["status"] = response.status if response is not None else 0
                sizes = req.sizes() if response is not None else {}
                entry["wire_bytes"] = int(sizes.get("responseBodySize", 0)) + int(
                    sizes.get("responseHeadersSize", 0)
                )
        finally:
            browser.close()

    # Label each recorded request with the refresh counter its fetch saw.
    unmatched = list(seen)
    for item in log:
        for i, entry in enumerate(unmatched):
            req = entry["req"]
            if req.url == item["url"] and req.method == item["method"]:
                entry["cycle"] = int(item["cycle"])
                del unmatched[i]
                break
    cycles: dict[int, list[dict[str, Any]]] = {}
    for entry in seen:
        # a request the fetch wrapper did not see (none expected) joins the first load
        cycles.setdefault(int(entry.get("cycle", 1)), []).append(entry)
    if any(k not in cycles for k in range(1, refreshes + 2)):
        raise RuntimeError(f"recorded cycles {sorted(cycles)}, wanted 1..{refreshes + 1}")

    def calls(entries: list[dict[str, Any]]) -> tuple[Call, ...]:
        entries = sorted(entries, key=lambda e: e["start_s"])
        ends = [e["end_s"] if e["end_s"] is not None else float("inf") for e in entries]
        waves = _waves([e["start_s"] for e in entries], ends)
        out = []
        for entry, wave in zip(entries, waves):
            req, headers = entry["req"], entry["headers"]
            out.append(
                Call(
                    method=req.method,
                    path=req.url[len(tb_url) :],
                    body=entry["body"],
                    headers=tuple((k, v) for k, v in headers.items() if k in REPLAYED_HEADERS),
                    conditional="if-none-match" in headers,
                    wave=wave,
                )
            )
        return tuple(out)

    refresh_labels = list(range(2, refreshes + 2))
    return Cycle(
        first=calls(cycles[1]),
        refreshes=tuple(calls(cycles[k]) for k in refresh_labels),
        first_render_s=first_render_s,
        first_wire_bytes=sum(e["wire_bytes"] for e in cycles[1]),
        refresh_wire_bytes=tuple(sum(e["wire_bytes"] for e in cycles[k]) for k in refresh_labels),
    )


def describe(calls: Sequence[Call]) -> str:
    """A short account of a cycle: requests per route, conditional ones, waves."""
    routes: dict[str, int] = {}
    for c in calls:
        route = c.path.split("?", 1)[0].rsplit("/", 1)[-1]
        key = f"{c.method} {route}"
        routes[key] = routes.get(key, 0) + 1
    conditional = sum(c.conditional for c in calls)
    waves = 1 + max((c.wave for c in calls), default=-1)
    parts = ", ".join(f"{n} x {k}" for k, n in sorted(routes.items()))
    return f"{len(calls)} requests ({parts}); {conditional} with If-None-Match; {waves} waves"


# -- replay --------------------------------------------------------------------


@dataclass
class Tally:
    """What the requests of one phase cost, as the viewers saw it."""

    latencies_s: list[float] = field(default_factory=list)
    wire_bytes: int = 0
    errors: int = 0
    not_modified: int = 0
    cycles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, latency_s: float, wire_bytes: int, status: int) -> None:
        with self.lock:
            self.latencies_s.append(latency_s)
            self.wire_bytes += wire_bytes
            if status == 304:
                self.not_modified += 1
            elif not 200 <= status < 300:
                self.errors += 1

    @property
    def requests(self) -> int:
        return len(self.latencies_s)


class Viewer:
    """One simulated browser tab: its own ETags, at most 6 requests in flight."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url
        self.timeout_s = timeout_s
        self._etags: dict[tuple[str, str, bytes | None], str] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(BROWSER_CONNECTIONS_PER_HOST)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _send(self, call: Call, tally: Tally) -> None:
        key = (call.method, call.path, call.body)
        headers = dict(call.headers)
        headers["Accept-Encoding"] = "gzip"
        etag = self._etags.get(key)
        if call.conditional and etag is not None:
            headers["If-None-Match"] = etag
        request = urllib.request.Request(
            self.base_url + call.path, data=call.body, headers=headers, method=call.method
        )
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as r:
                raw, status, head = r.read(), r.status, r.headers
        except urllib.error.HTTPError as err:
            raw, status, head = err.read(), err.code, err.headers
        except (OSError, TimeoutError):
            tally.add(time.perf_counter() - t0, 0, 0)
            return
        # what crossed the wire: status line, headers and the (gzip) body
        received = _STATUS_LINE_BYTES + len(head.as_bytes()) + len(raw)
        tally.add(time.perf_counter() - t0, received, status)
        got = head.get("ETag")
        if got:
            self._etags[key] = got

    def run(self, calls: Sequence[Call], tally: Tally) -> None:
        """Sends one cycle, wave by wave, and waits for all its answers."""
        waves = sorted({c.wave for c in calls})
        for wave in waves:
            futures = [self._pool.submit(self._send, c, tally) for c in calls if c.wave == wave]
            for f in futures:
                f.result()
        with tally.lock:
            tally.cycles += 1
