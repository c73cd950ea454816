"""End to end: the Serving view of a TTS server's run (issue 12).

A synthetic IndexTTS2 serving run (`servingdata.write_serving_run`: 120
requests with their stages, audio, RTF, time to first audio and cache state)
sits in one log directory with a training run that served nothing, a run
that timed requests but reported neither first audio nor cache state, and a
run that logged only an RTF. A real TensorBoard serves them and Chromium
shows the tab. The tests read what a user reads: the panel's summary strip,
its four findings, the stacked stage shares (legend order and each stage's
own share under the cursor), the latency histogram (its total and a cell's
hover) and the cold/warm comparison, and check them against numbers
computed here from the requests `write_serving_run` returned (numpy
percentiles, sums per window), or against the route's answer where the
windows are its choice. The panel's select offers only runs with inference
data, the panel is hidden without one, and the runs the route has less to
say about get its notes.

Screenshots (the panel light and dark, the Inference section) land in the
test's ``tmp_path`` and are copied to ``/tmp/ttsmon-serving-*.png``. The
render time is printed, never asserted (shared, noisy machines).
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from browserkit import SKIPS, Tab, api_url, get_json
from servingdata import ServingSpec, write_serving_run
from tbserver import tensorboard_server

pytestmark = SKIPS

SPEC = ServingSpec()
TRAIN_RUN = "train/laptop"
PLAIN_RUN = "serve/plain"
RTF_ONLY_RUN = "serve/rtf-only"
PLAIN_REQUESTS = 12
STAGES = ["gpt_gen", "gpt_forward", "s2mel", "bigvgan"]


# -- the log directory ---------------------------------------------------------


def _write_other_runs(root: Path) -> None:
    """A training run (no inference), a serving run without TTFA or cache state, an RTF-only run."""
    from tb_plugin_ttsmon import metadata
    from tb_plugin_ttsmon.recorder import writers

    t0 = SPEC.start_wall_s

    def write(run: str, rows: list[tuple[float, dict[str, float]]]) -> None:
        w = writers.EventFileSummaryWriter(str(root / run))
        try:
            facts = {"hostname": "laptop", "pid": 7, "started_at_s": t0 - 1}
            w.write(metadata.sample_step(t0 - 1), {}, {metadata.RUN_FACTS_TAG: facts}, t0 - 1)
            for wall, scalars in rows:
                w.write(metadata.sample_step(wall), scalars, wall_time_s=wall)
        finally:
            w.close()

    write(
        TRAIN_RUN,
        [
            (t0 + i, {"system/cpu_percent": 20.0 + i, "train/loss": 2.0 / (i + 1)})
            for i in range(10)
        ],
    )
    write(
        PLAIN_RUN,
        [
            (
                t0 + 10 * i,
                {
                    "inference/latency_ms": 900.0 + 10 * i,
                    "inference/stage/tts/latency_ms": 800.0 + 10 * i,
                    "inference/audio_s": 2.0,
                    "inference/rtf": (0.9 + 0.01 * i) / 2.0,
                },
            )
            for i in range(PLAIN_REQUESTS)
        ],
    )
    write(RTF_ONLY_RUN, [(t0 + 10 * i, {"inference/rtf": 0.5}) for i in range(6)])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, float]]]:
    root = tmp_path_factory.mktemp("serving")
    reqs = write_serving_run(root, SPEC)
    _write_other_runs(root)
    return root, reqs


@pytest.fixture(scope="module")
def tb(served: tuple[Path, list[dict[str, float]]]) -> Iterator[str]:
    root, reqs = served
    with tensorboard_server(str(root), load_fast=True) as url:
        # Every run loaded, the serving run with all its requests.
        deadline = time.monotonic() + 90
        while True:
            _, runs = get_json(url + "data/plugin/ttsmon/versions")
            status, view = get_json(api_url(url, "serving", [("run", SPEC.run)]))
            _, plain = get_json(api_url(url, "serving", [("run", PLAIN_RUN)]))
            if (
                runs
                and len(runs["runs"]) == 4
                and status == 200
                and view["requests"] == len(reqs)
                and plain
                and plain["requests"] == PLAIN_REQUESTS
            ):
                break
            assert time.monotonic() < deadline, f"runs not loaded: {runs} {status}"
            time.sleep(0.5)
        yield url


# -- helpers -------------------------------------------------------------------


def _shot(target: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    target.screenshot(path=str(path))
    shutil.copy(path, f"/tmp/ttsmon-serving-{name}.png")


def _wait_rendered(tab: Tab, renders: int = 1) -> dict[str, Any]:
    tab.frame.wait_for_function(
        f"Number(document.body.dataset.servingRendered || 0) >= {renders}", timeout=90_000
    )
    return cast(dict[str, Any], tab.frame.evaluate("window.__ttsmonServing"))


def _ms(text: str) -> float:
    """A duration as the tab writes it ("850 ms", "13.2 s", "9 m 56 s") in ms."""
    text = text.replace(",", "")
    if m := re.fullmatch(r"([\d.]+) ms", text):
        return float(m.group(1))
    if m := re.fullmatch(r"([\d.]+) s", text):
        return float(m.group(1)) * 1000
    if m := re.fullmatch(r"(\d+) m (\d+) s", text):
        return (int(m.group(1)) * 60 + int(m.group(2))) * 1000
    raise AssertionError(f"not a duration: {text!r}")


def _stat(panel: Any, stat: str) -> str:
    return cast(str, panel.locator(f'.sv-stat[data-stat="{stat}"] .sv-stat-value').inner_text())


def _legend(block: Any) -> list[tuple[str, str]]:
    """(label, value) of each stage row of a uPlot legend (the x row left out)."""
    rows = block.locator(".u-legend .u-series").evaluate_all(
        "rs => rs.map((r) => [r.querySelector('.u-label').textContent,"
        " r.querySelector('.u-value').textContent])"
    )
    return [(str(a), str(b)) for a, b in rows[1:]]


def _pct(text: str) -> float:
    m = re.fullmatch(r"([\d.]+) %", text)
    assert m, text
    return float(m.group(1))


# -- the serving run -------------------------------------------------------------


def test_serving_view_of_an_indextts2_server(
    browser: Any, tb: str, served: tuple[Path, list[dict[str, float]]], tmp_path: Path
) -> None:
    _, reqs = served
    lat = np.array([r["latency_ms"] for r in reqs])
    rtf = np.array([r["rtf"] for r in reqs])
    ttfa = np.array([r["ttfa_ms"] for r in reqs])
    warm = np.array([r["cache_hit"] == 1.0 for r in reqs])
    stage = {s: np.array([r[f"stage:{s}"] for r in reqs]) for s in [*STAGES, "unattributed"]}

    tab = Tab(browser, tb)
    try:
        frame, page = tab.frame, tab.page
        page.set_viewport_size({"width": 1440, "height": 3400})
        stats = _wait_rendered(tab)
        panel = frame.locator('section[data-section="serving"]')
        assert panel.is_visible()
        # Placed first (no job here), above the alerts and the chart sections.
        order = frame.eval_on_selector(
            ".sections",
            "s => [...s.children].filter((c) => !c.hidden).map((c) => c.dataset.section)",
        )
        assert order.index("serving") < order.index("alerts") < order.index("inference"), order
        # The run select offers the runs with inference data only; the served one first.
        options = panel.locator(".run-select option").evaluate_all("os => os.map((o) => o.value)")
        assert options == [SPEC.run, PLAIN_RUN, RTF_ONLY_RUN]
        assert panel.locator(".run-select").input_value() == SPEC.run
        assert SPEC.run in panel.locator(".sv-head").inner_text()

        # The summary strip, against percentiles of the requests written.
        assert _stat(panel, "requests") == str(len(reqs))
        for stat, want in (
            ("latency-p50", np.percentile(lat, 50)),
            ("latency-p95", np.percentile(lat, 95)),
            ("latency-p99", np.percentile(lat, 99)),
            ("ttfa-p50", np.percentile(ttfa, 50)),
            ("ttfa-p95", np.percentile(ttfa, 95)),
        ):
            assert _ms(_stat(panel, stat)) == pytest.approx(want, rel=0.006), stat
        assert float(_stat(panel, "rtf-p50")) == pytest.approx(np.percentile(rtf, 50), abs=0.006)
        assert float(_stat(panel, "rtf-p95")) == pytest.approx(np.percentile(rtf, 95), abs=0.006)
        # Slower than real time: the RTF p95 is red.
        assert np.percentile(rtf, 95) > 1
        assert "bad" in (
            panel.locator('.sv-stat[data-stat="rtf-p95"]').get_attribute("class") or ""
        )
        red = panel.locator('.sv-stat[data-stat="rtf-p95"] .sv-stat-value').evaluate(
            "e => getComputedStyle(e).color"
        )
        assert red == "rgb(217, 48, 37)", red
        audio_total = sum(r["audio_s"] for r in reqs)
        assert _ms(_stat(panel, "audio")) / 1000 == pytest.approx(audio_total, abs=1.0)

        # The four findings, with their numbers in the text.
        findings = panel.locator(".sv-findings .finding")
        ids = findings.evaluate_all("fs => fs.map((f) => f.dataset.finding)")
        assert sorted(ids) == sorted(
            [
                "stage_dominates",
                "slower_than_real_time",
                "cold_slower_than_warm",
                "unattributed_latency",
            ]
        )

        def text(fid: str) -> str:
            return cast(
                str, panel.locator(f'.sv-findings .finding[data-finding="{fid}"]').inner_text()
            )

        gpt_share = 100 * stage["gpt_gen"].sum() / lat.sum()
        m = re.search(r"gpt_gen is (\d+) % of latency", text("stage_dominates"))
        assert m and int(m.group(1)) == round(gpt_share), (text("stage_dominates"), gpt_share)
        m = re.search(r"p95 RTF is ([\d.]+)", text("slower_than_real_time"))
        assert m and float(m.group(1)) == pytest.approx(np.percentile(rtf, 95), abs=0.006)
        ratio = float(np.median(lat[~warm]) / np.median(lat[warm]))
        m = re.search(r"cold requests are ([\d.]+)× slower", text("cold_slower_than_warm"))
        assert m and float(m.group(1)) == pytest.approx(ratio, abs=0.051)
        un_share = 100 * stage["unattributed"].sum() / lat.sum()
        m = re.search(r"unattributed time is (\d+) % of latency", text("unattributed_latency"))
        assert m and int(m.group(1)) == round(un_share), (text("unattributed_latency"), un_share)

        # The answer the tab drew: the same request again (the windows are the route's choice).
        asked = frame.evaluate(
            "performance.getEntriesByType('resource').map((e) => e.name)"
            ".filter((n) => n.includes('/serving?'))"
        )
        assert asked, "the tab did not ask the serving route"
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(asked[-1]).query)
        assert query["run"] == [SPEC.run]
        status, view = get_json(api_url(tb, "serving", [(k, v[0]) for k, v in query.items()]))
        assert status == 200
        buckets, start, bucket_s = view["buckets"], view["start_wall_time_s"], view["bucket_s"]
        assert 2 <= buckets <= len(reqs)
        assert f"{buckets} windows of" in panel.locator(".sv-head").inner_text()
        column = np.clip(
            ((np.array([r["wall_s"] for r in reqs]) - start) // bucket_s).astype(int),
            0,
            buckets - 1,
        )

        # Stacked stage shares: one area per stage, largest total first, unattributed last.
        totals = {s: stage[s].sum() for s in STAGES}
        expected = [*sorted(STAGES, key=lambda s: -totals[s]), "unattributed"]
        stack = panel.locator(".sv-stack")
        legend = _legend(stack)
        assert [label for label, _ in legend] == expected
        # Without a cursor the legend gives each stage's share of the whole run.
        for label, value in legend:
            whole = 100 * stage[label].sum() / lat.sum()
            assert _pct(value) == pytest.approx(whole, abs=0.06), label
        assert "whole run:" in stack.locator(".sv-block-note").inner_text()
        # Under the cursor: each stage's own share of that window (not the cumulative one).
        over = stack.locator(".u-over")
        box = over.bounding_box()
        assert box is not None
        b = buckets // 3
        over.hover(position={"x": box["width"] * (b + 0.5) / buckets, "y": box["height"] / 2})
        frame.wait_for_function(
            "document.querySelector('.sv-stack .u-legend .u-series .u-value').textContent"
            " !== 'whole run'"
        )
        in_b = column == b
        assert in_b.any()
        for label, value in _legend(stack):
            # Shown with 3 significant digits (the route rounds shares to 4 decimals).
            assert _pct(value) == pytest.approx(100 * view["stage_share"][label][b], abs=0.06)
            own = 100 * stage[label][in_b].sum() / lat[in_b].sum()
            assert _pct(value) == pytest.approx(own, abs=0.1), label
        window = stack.locator(".u-legend .u-series").first.locator(".u-value").inner_text()
        assert window.endswith(
            time.strftime("%H:%M:%S", time.localtime(start + (b + 1) * bucket_s))
        )
        # The histogram below outlines the same window.
        mark = panel.locator(".sv-hm-mark").bounding_box()
        cbox = panel.locator("canvas.sv-hm-canvas").bounding_box()
        assert mark is not None and cbox is not None
        assert mark["x"] == pytest.approx(cbox["x"] + cbox["width"] * b / buckets, abs=1.5)
        assert mark["x"] == pytest.approx(box["x"] + box["width"] * b / buckets, abs=1.5)
        page.mouse.move(0, 0)
        assert panel.locator(".sv-hm-mark").is_hidden()

        # Time to first audio: p50 and p95 per window.
        ttfa_block = panel.locator(".sv-ttfa")
        assert [label for label, _ in _legend(ttfa_block)] == ["p50", "p95"]

        # The latency histogram: every request counted once, a cell's count on hover.
        hist = panel.locator(".sv-hist")
        canvas = hist.locator("canvas.sv-hm-canvas")
        assert canvas.get_attribute("data-total") == str(len(reqs))
        assert f"{len(reqs)} requests in all" in hist.inner_text()
        edges = np.array(view["latency_histogram"]["edges_ms"])
        bins = len(edges) - 1
        row = np.clip(np.searchsorted(edges, lat, side="right") - 1, 0, bins - 1)
        i = int(np.argmax(lat))  # the slowest request: top row
        count = int(((column == column[i]) & (row == row[i])).sum())
        cbox = canvas.bounding_box()
        assert cbox is not None
        canvas.hover(
            position={
                "x": cbox["width"] * (column[i] + 0.5) / buckets,
                "y": cbox["height"] * (bins - row[i] - 0.5) / bins,
            }
        )
        tip = hist.locator(".sv-hm-tip")
        tip.wait_for()
        lines = tip.inner_text().splitlines()
        assert lines[0].startswith(
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start + column[i] * bucket_s))
        )
        assert lines[1].startswith("latency ")
        in_window = int((column == column[i]).sum())
        assert (
            lines[2] == f"{count} request{'s' if count != 1 else ''} of {in_window} in this window"
        )
        # An empty cell is drawn in the "no value" colour (white), a full one is not.
        pixel = canvas.evaluate(
            """(c, [fx, fy]) => [...c.getContext('2d').getImageData(
                Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data.slice(0, 3)]""",
            [(column[i] + 0.5) / buckets, (bins - row[i] - 0.5) / bins],
        )
        assert pixel != [255, 255, 255], pixel
        empty = next(
            (bb, k)
            for bb in range(buckets)
            for k in range(bins)
            if not ((column == bb) & (row == k)).any()
        )
        pixel = canvas.evaluate(
            """(c, [fx, fy]) => [...c.getContext('2d').getImageData(
                Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data.slice(0, 3)]""",
            [(empty[0] + 0.5) / buckets, (bins - empty[1] - 0.5) / bins],
        )
        assert pixel == [255, 255, 255], pixel
        page.mouse.move(0, 0)

        # Cold against warm.
        cache = panel.locator(".sv-cache")
        for side, mask in (("cold", ~warm), ("warm", warm)):
            card = cache.locator(f'.sv-side[data-side="{side}"]')

            def fact(key: str, card: Any = card) -> str:
                return cast(
                    str, card.locator(f'.sv-fact[data-fact="{key}"] .sv-fact-value').inner_text()
                )

            assert fact("requests") == str(int(mask.sum()))
            assert _ms(fact("latency-p50")) == pytest.approx(
                np.percentile(lat[mask], 50), rel=0.006
            )
            assert _ms(fact("latency-p95")) == pytest.approx(
                np.percentile(lat[mask], 95), rel=0.006
            )
            assert _ms(fact("ttfa-p50")) == pytest.approx(np.percentile(ttfa[mask], 50), rel=0.006)
        m = re.fullmatch(
            r"cold is ([\d.]+)× slower \(p50\)", cache.locator(".sv-ratio").inner_text()
        )
        assert m and float(m.group(1)) == pytest.approx(ratio, abs=0.051)
        # The bars: the cold median is longer than the warm one, each p95 mark beyond its bar.
        widths = cache.locator(".sv-bar-fill").evaluate_all(
            "bs => bs.map((b) => b.getBoundingClientRect().width)"
        )
        assert widths[0] / widths[1] == pytest.approx(ratio, rel=0.02)

        stats = _wait_rendered(tab)
        print(
            f"\nserving view, {len(reqs)} requests in {buckets} windows:"
            f" render {stats['lastRenderMs']:.0f} ms (answer parsed -> drawn)"
        )
        _shot(panel, tmp_path, "light")
        inference = frame.locator('.section[data-section="inference"]')
        inference.scroll_into_view_if_needed()
        _shot(inference, tmp_path, "inference")

        # Dark mode (TensorBoard's setting): the panel drawn again in dark colours.
        renders = stats["renders"]
        page.evaluate("document.body.classList.add('dark-mode')")
        frame.wait_for_function("document.documentElement.classList.contains('dark')")
        frame.evaluate("window.scrollTo(0, 0)")
        pixel = canvas.evaluate(
            """(c, [fx, fy]) => [...c.getContext('2d').getImageData(
                Math.floor(c.width * fx), Math.floor(c.height * fy), 1, 1).data.slice(0, 3)]""",
            [(empty[0] + 0.5) / buckets, (bins - empty[1] - 0.5) / bins],
        )
        assert pixel == [0x5F, 0x63, 0x68], pixel
        _shot(panel, tmp_path, "dark")
        page.evaluate("document.body.classList.remove('dark-mode')")
        assert tab.frame.evaluate("window.__ttsmonServing.renders") >= renders
        assert tab.errors == []
    finally:
        tab.close()


# -- the other runs ---------------------------------------------------------------


def test_serving_panel_notes_and_runs_without_inference(
    browser: Any, tb: str, tmp_path: Path
) -> None:
    tab = Tab(browser, tb)
    try:
        frame = tab.frame
        _wait_rendered(tab)
        panel = frame.locator('section[data-section="serving"]')
        select = panel.locator(".run-select")

        # Requests without first audio or cache state: the view says what is missing.
        renders = int(frame.evaluate("window.__ttsmonServing.renders"))
        select.select_option(PLAIN_RUN)
        _wait_rendered(tab, renders + 1)
        assert panel.locator('.sv-stat[data-stat="requests"] .sv-stat-value').inner_text() == str(
            PLAIN_REQUESTS
        )
        assert (
            "No request reported its first audio (req.first_audio())"
            in panel.locator(".sv-ttfa").inner_text()
        )
        assert panel.locator(".sv-ttfa .uplot").count() == 0
        assert (
            "No request said whether its speaker prompt was cached (req.cache_hit)"
            in panel.locator(".sv-cache").inner_text()
        )
        # One timed stage, its share of the whole run in the legend.
        tts = sum(800.0 + 10 * i for i in range(PLAIN_REQUESTS))
        total = sum(900.0 + 10 * i for i in range(PLAIN_REQUESTS))
        ((label, value),) = _legend(panel.locator(".sv-stack"))
        assert label == "tts" and _pct(value) == pytest.approx(100 * tts / total, abs=0.06)
        assert panel.locator('.sv-stat[data-stat="ttfa-p50"] .sv-stat-value').inner_text() == "—"
        _shot(panel, tmp_path, "plain")

        # Only an RTF, no request latencies: the route's 404 message is the panel's note.
        select.select_option(RTF_ONLY_RUN)
        note = panel.locator(".panel-note")
        frame.wait_for_function(
            "document.querySelector('section[data-section=\"serving\"] .panel-note').textContent"
            ".includes('has no inference requests')"
        )
        assert note.inner_text() == f"run '{RTF_ONLY_RUN}' has no inference requests"
        assert panel.locator(".sv-content").is_hidden()
        assert panel.is_visible()

        # A training run alone: no Serving panel.
        frame.click(".picker-btn")
        frame.locator(".picker-none-btn").click()
        frame.locator(f'.picker-row[data-run="{TRAIN_RUN}"] input').check()
        frame.press(".picker-filter", "Escape")
        frame.wait_for_function(
            "document.querySelector('section[data-section=\"serving\"]').hidden === true"
        )
        assert panel.is_hidden()
        # The serving run again beside it: the panel is back, its select without the training run.
        frame.click(".picker-btn")
        frame.locator(f'.picker-row[data-run="{SPEC.run}"] input').check()
        frame.press(".picker-filter", "Escape")
        panel.wait_for(state="visible")
        options = select.evaluate("s => [...s.options].map((o) => o.value)")
        assert options == [SPEC.run]
        assert select.is_hidden()  # one run: nothing to choose
        frame.wait_for_function(
            "document.querySelector('.sv-head') && document.querySelector('.sv-head').textContent"
            f".includes({SPEC.run!r})"
        )
        # The one failed load is the route's documented 404 for the RTF-only run.
        assert [e for e in tab.errors if "serving?run=serve%2Frtf-only&" not in e] == []
    finally:
        tab.close()
