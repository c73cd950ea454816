"""End to end: the tab stays open while a run grows, and stays cheap once it stops.

A real TensorBoard (both loaders, ``--reload_interval=1``) serves a run that a
background thread grows with the recorder's own event writer (a training loss
and a system sample about every 0.2 s, for about 40 s); a real Chromium keeps
the TTS Monitor tab open the whole time, refreshing every 5 s as a user's tab
does. The tests check what the user's charts hold: every written step exactly
once, no gap and no repeat at the seams between incremental refreshes (each
asks only for the rows after the last step it holds); and what the idle tab
costs after the writer stopped: one revalidated `versions` request (a 304)
per refresh, a few hundred bytes. A hidden page asks nothing at all.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserkit import SKIPS, Tab
from tbserver import tensorboard_server

from tb_plugin_ttsmon import metadata

pytestmark = SKIPS

RUN = "live/grow"
GROW_S = 40.0
TICK_S = 0.2
AUTO_REFRESH_S = 5.0  # frontend/src/app.ts, AUTO_REFRESH_MS
IDLE_REFRESHES = 3
# An idle refresh: one `versions` request answered 304 (headers only).
IDLE_BYTES_PER_REFRESH = 2048
API = "/data/plugin/ttsmon/"


def _loss(step: int) -> float:
    return 2.0 / step + 0.01 * math.sin(step)


class Grower(threading.Thread):
    """Writes a loss and a CPU sample per tick with the recorder's event writer, then stops."""

    def __init__(self, run_dir: str, seconds: float) -> None:
        super().__init__(daemon=True)
        from tb_plugin_ttsmon.recorder import writers

        self.writer = writers.EventFileSummaryWriter(run_dir, flush_s=0.2)
        self.seconds = seconds
        self.steps: list[int] = []
        self.sample_steps: list[int] = []
        self.error: BaseException | None = None
        now = time.time()
        facts = {"hostname": "live-host", "pid": 1, "started_at_s": now}
        self.writer.write(metadata.sample_step(now), {}, {metadata.RUN_FACTS_TAG: facts}, now)
        self.tick()  # the run exists before the tab opens
        self.writer.flush()

    def tick(self) -> None:
        now = time.time()
        step = len(self.steps) + 1
        self.writer.write(step, {"train/loss": _loss(step)}, wall_time_s=now)
        sample = metadata.sample_step(now)
        if self.sample_steps and sample <= self.sample_steps[-1]:
            sample = self.sample_steps[-1] + 1
        self.writer.write(sample, {"system/cpu_percent": float(step % 100)}, wall_time_s=now)
        self.steps.append(step)
        self.sample_steps.append(sample)

    def run(self) -> None:
        try:
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline:
                time.sleep(TICK_S)
                self.tick()
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.writer.close()


class Traffic:
    """The tab's requests to the plugin's API as the network saw them (Chrome DevTools Protocol).

    CDP reports what went over the wire: a revalidated answer's raw status
    (304, `responseReceivedExtraInfo`) and its encoded length, headers
    included; Playwright's own events show the cached 200 that `fetch` reads.
    """

    def __init__(self, tab: Tab) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []
        self._cdp = tab.context.new_cdp_session(tab.page)
        self._cdp.on("Network.requestWillBeSent", self._on_request)
        self._cdp.on("Network.responseReceivedExtraInfo", self._on_response)
        self._cdp.on("Network.loadingFinished", self._on_finished)
        self._cdp.send("Network.enable")

    def _on_request(self, e: dict[str, Any]) -> None:
        path = urllib.parse.urlsplit(e["request"]["url"]).path
        if API not in path or path.endswith((".js", ".css")):
            return
        self._by_id[e["requestId"]] = {
            "route": path.split(API, 1)[1],
            "method": e["request"]["method"],
            "body": e["request"].get("postData", ""),
            "status": None,
            "bytes": None,
        }
        self._order.append(e["requestId"])

    def _on_response(self, e: dict[str, Any]) -> None:
        if e["requestId"] in self._by_id:
            # the status the server sent (a 304), not the cached 200 the page reads
            self._by_id[e["requestId"]]["status"] = e["statusCode"]

    def _on_finished(self, e: dict[str, Any]) -> None:
        if e["requestId"] in self._by_id:
            self._by_id[e["requestId"]]["bytes"] = e["encodedDataLength"]

    def mark(self) -> int:
        return len(self._order)

    def settle(self, tab: Tab, mark: int = 0, timeout_s: float = 15.0) -> None:
        """Waits until every request since `mark` has its status and size (CDP's events
        arrive after the page's own; a loaded machine delays them by seconds)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(r["status"] is not None and r["bytes"] is not None for r in self.since(mark)):
                return
            tab.page.wait_for_timeout(200)

    def since(self, mark: int) -> list[dict[str, Any]]:
        return [dict(self._by_id[i]) for i in self._order[mark:]]


def _held(tab: Tab, tag: str) -> dict[str, Any] | None:
    return tab.frame.evaluate("([run, tag]) => window.__ttsmonLive.series(run, tag)", [RUN, tag])


def _wait_for_last_step(tab: Tab, tag: str, last: int, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        held = _held(tab, tag)
        if held and held["step"] and held["step"][-1] == last:
            return held
        if time.monotonic() > deadline:
            got = held["step"][-5:] if held else None
            raise AssertionError(f"{tag}: the tab never got to step {last}, holds ...{got}")
        tab.page.wait_for_timeout(500)


@pytest.fixture(params=[True, False], ids=["load_fast", "python_loader"])
def load_fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_a_growing_run_appears_without_gaps_or_repeats_and_idles_cheaply(
    browser: Any, tmp_path: Path, load_fast: bool
) -> None:
    logdir = tmp_path / "logs"
    grower = Grower(str(logdir / RUN), GROW_S)
    with tensorboard_server(str(logdir), load_fast=load_fast) as url:
        tab = Tab(browser, url)
        try:
            traffic = Traffic(tab)
            tab.frame.wait_for_function(
                "([run]) => window.__ttsmonLive.series(run, 'train/loss') !== null", arg=[RUN]
            )
            grower.start()
            grower.join(GROW_S + 30)
            assert not grower.is_alive() and grower.error is None, grower.error

            loss = _wait_for_last_step(tab, "train/loss", grower.steps[-1])
            cpu = _wait_for_last_step(tab, "system/cpu_percent", grower.sample_steps[-1])
            traffic.settle(tab)  # the last answers' loadingFinished events
            grown = traffic.since(0)
            tab.screenshot(tmp_path / "live.png")
            tab.screenshot("/tmp/ttsmon-live.png")

            # What the charts hold: every written step exactly once, in order.
            assert loss["step"] == grower.steps
            assert loss["value"] == pytest.approx([_loss(s) for s in grower.steps])
            assert cpu["step"] == grower.sample_steps
            assert len(set(cpu["step"])) == len(grower.sample_steps)
            # ... and it came in increments: batches that asked only for newer rows.
            batches = [r for r in grown if r["route"] == "series_batch"]
            incremental = [
                r for r in batches if "since_step" in urllib.parse.unquote_plus(r["body"])
            ]
            assert len(incremental) >= 3, [r["body"][:200] for r in batches]
            assert not [r for r in grown if r["route"] == "series"], "the old per-run route"
            # The drawn loss chart shows the last value in its legend.
            legend = tab.frame.locator('.chart-card[data-chart="loss"] .u-legend .u-value').first
            assert legend.text_content() not in ("", "–", None)

            # Idle: the writer stopped; each refresh is one revalidated `versions`.
            start = traffic.mark()
            refreshes = tab.refreshes()
            tab.frame.wait_for_function(
                f"window.__ttsmon.refreshes >= {refreshes + IDLE_REFRESHES + 1}",
                timeout=int((IDLE_REFRESHES + 3) * AUTO_REFRESH_S * 1000),
            )
            traffic.settle(tab, start)  # the last answer's loadingFinished event
            idle = traffic.since(start)
            done = tab.refreshes() - refreshes
            routes = sorted({r["route"] for r in idle})
            assert routes == ["versions"], idle
            assert {r["status"] for r in idle} == {304}, idle
            per_refresh = sum(r["bytes"] for r in idle) / done
            assert per_refresh < IDLE_BYTES_PER_REFRESH, idle
            # The browser's own account agrees (resource timing's transferSize).
            transferred = tab.frame.evaluate(
                """() => performance.getEntriesByType('resource')
                    .filter((e) => e.name.includes('/versions'))
                    .slice(-3).map((e) => e.transferSize)"""
            )
            assert transferred and max(transferred) < IDLE_BYTES_PER_REFRESH, transferred
            print(
                json.dumps(
                    {
                        "loader": "rust" if load_fast else "python",
                        "grow_requests": len(grown),
                        "grow_bytes": sum(r["bytes"] for r in grown),
                        "idle_bytes_per_refresh": per_refresh,
                        "idle_transfer_sizes": transferred,
                    }
                )
            )
            assert tab.errors == []
        finally:
            tab.close()


@pytest.fixture(scope="module")
def stopped_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A TensorBoard on a run that stopped growing."""
    logdir = tmp_path_factory.mktemp("stopped")
    Grower(str(logdir / RUN), 0.0).writer.close()
    with tensorboard_server(str(logdir), load_fast=True) as url:
        yield url


def test_a_hidden_page_asks_nothing_and_refreshes_when_shown(
    browser: Any, stopped_url: str
) -> None:
    tab = Tab(browser, stopped_url)
    try:
        traffic = Traffic(tab)
        # The Page Visibility API as a browser in a background tab reports it.
        set_visibility = """(state) => {
            Object.defineProperty(
                document, 'visibilityState', {configurable: true, get: () => state});
            document.dispatchEvent(new Event('visibilitychange'));
            return window.__ttsmon.refreshes;
        }"""
        tab.frame.wait_for_function("window.__ttsmon.refreshes >= 1")
        tab.page.wait_for_timeout(1000)  # the first refresh's requests finish
        refreshes = tab.frame.evaluate(set_visibility, "hidden")
        start = traffic.mark()
        tab.page.wait_for_timeout(int(2.5 * AUTO_REFRESH_S * 1000))
        assert traffic.since(start) == []
        assert tab.refreshes() == refreshes
        # Shown again: the refresh starts in the same task as the event.
        assert tab.frame.evaluate(set_visibility, "visible") == refreshes + 1
        tab.frame.wait_for_function(f"window.__ttsmon.renders >= {refreshes + 1}")
        assert [r["route"] for r in traffic.since(start)][:1] == ["versions"]
        assert tab.errors == []
    finally:
        tab.close()


def test_the_browser_downsamples_like_the_server(browser: Any, stopped_url: str) -> None:
    """A series grown past what its chart draws is cut in the browser as the server cuts it."""
    import numpy as np

    from tb_plugin_ttsmon.query.downsample import minmax_indices

    tab = Tab(browser, stopped_url)
    try:
        rng = np.random.default_rng(7)
        for n, points in [(1000, 100), (4001, 200), (57, 10), (300, 299)]:
            values = rng.normal(size=n)
            values[n // 3] = 40.0  # a spike
            values[n // 2] = math.nan
            values[n - 2] = math.inf
            want = minmax_indices(values, points).tolist()
            got = tab.frame.evaluate(
                "([v, p]) => window.__ttsmonLive.minmaxIndices(v, p)",
                [
                    [
                        None if math.isnan(v) else ("Infinity" if math.isinf(v) else v)
                        for v in values
                    ],
                    points,
                ],
            )
            assert got == want, (n, points)
        # Past twice its chart's points a held series is cut, its last point kept
        # (the next `since_step` starts there); below that it is left whole.
        kept = tab.frame.evaluate(
            "window.__ttsmonLive.capSeries([...Array(1000).keys()].map((i) => Math.sin(i)), 500)"
        )
        assert len(kept) == 1000
        kept = tab.frame.evaluate(
            "window.__ttsmonLive.capSeries([...Array(1001).keys()]"
            ".map((i) => (i % 7 === 0 ? 100 : Math.sin(i))), 100)"
        )
        assert kept[-1] == 1000 and len(kept) <= 102 and kept == sorted(set(kept))
        # The spikes (every 7th point) survive: each of the 48 buckets of 21
        # points keeps its highest point, a spike.
        buckets = math.ceil(1001 / math.ceil(1001 / 50))
        assert sum(1 for k in kept if k % 7 == 0) == buckets == 48
        assert tab.errors == []
    finally:
        tab.close()


def test_a_run_restarted_from_a_checkpoint_replaces_the_held_series(
    browser: Any, tmp_path: Path
) -> None:
    """A job restarted at an earlier step: the loader drops the later steps, the tab follows."""
    from tb_plugin_ttsmon.recorder import writers

    logdir = tmp_path / "logs"
    run_dir = str(logdir / RUN)
    first = Grower(run_dir, 0.0)
    for _ in range(29):
        first.tick()
    first.writer.close()
    assert first.steps[-1] == 30
    with tensorboard_server(str(logdir), load_fast=True) as url:
        tab = Tab(browser, url)
        try:
            _wait_for_last_step(tab, "train/loss", 30)
            # The restart: a new process writes steps 10..20 again, with other values.
            time.sleep(1.1)  # a new event file name (they sort by second)
            again = writers.EventFileSummaryWriter(run_dir, flush_s=0.2)
            try:
                for step in range(10, 21):
                    again.write(step, {"train/loss": 100.0 + step})
            finally:
                again.close()
            held = _wait_for_last_step(tab, "train/loss", 20)
            assert held["step"] == list(range(1, 21))
            assert held["value"] == pytest.approx(
                [_loss(s) for s in range(1, 10)] + [100.0 + s for s in range(10, 21)]
            )
            assert tab.errors == []
        finally:
            tab.close()
