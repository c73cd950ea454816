"""End to end: the tab's analytics (findings, alerts, anomaly markers, heatmap,
correlation) in a real TensorBoard, driven by a real Chromium.

One run is written with the real recorder (a loss spike and a NaN) plus two
alert documents (a rule firing and returning to normal) written with the
recorder's own event writer, as the alert rules write them. Two sources:

- ``backend``: the plugin's analytics routes (any answer but 200, 404
  included, fails);
- ``mocked``: the same TensorBoard for everything else, the six analytics
  routes answered by Playwright with documents of the shapes in
  ``tb_plugin_ttsmon/plugin/http_api.md`` (so the tab's side is tested on
  documents that show every view, whatever the run's data makes the backend say).

Screenshots (light and dark) land in each test's ``tmp_path``.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from browserkit import SKIPS, Tab, api_url, get_json, wait_for_run
from tbserver import tensorboard_server

pytestmark = SKIPS

RUN = "analytics-ሙከራ"
STEPS = 60
SPIKE_STEP = 40
NAN_STEP = 50
ALERT_STEP = 30
FIRING = "Host memory 97.5 % > 95 % for 10 s (planted)"
RESOLVED = "Host memory back to 60.0 % (<= 95 %) after 1 s (planted)"
ROUTES = ("alerts", "anomalies", "heatmap", "correlation", "scatter", "findings")


def _loss(step: int) -> float:
    if step == SPIKE_STEP:
        return 25.0
    if step == NAN_STEP:
        return math.nan
    return 1.0 + 0.05 * math.sin(step) + 1.0 / step


def _alert(wall: float, state: str, value: float, message: str) -> dict[str, Any]:
    return {
        "wall_time_s": wall,
        "training_step": ALERT_STEP,
        "rule": "host_memory_high",
        "tag": "system/memory_percent",
        "op": ">",
        "threshold": 95.0,
        "value": value,
        "for_s": 10.0,
        "severity": "warning",
        "state": state,
        "message": message,
    }


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    import tb_plugin_ttsmon as ttsmon
    from tb_plugin_ttsmon.recorder.writers import create_writer

    root = tmp_path_factory.mktemp("analytics_logs")
    run_dir = str(root / RUN)
    alert_wall = None
    with ttsmon.Monitor(run_dir, interval=0.1, writer="event", gpus=False, flush_s=0.5) as mon:
        for step in range(1, STEPS + 1):
            mon.log_training(step, loss=_loss(step), learning_rate=1e-3)
            if step == ALERT_STEP:
                alert_wall = time.time()
            time.sleep(0.03)
        time.sleep(0.3)
    assert alert_wall is not None
    writer = create_writer("event", run_dir)
    try:
        for wall, state, value, message in (
            (alert_wall, "firing", 97.5, FIRING),
            (alert_wall + 0.5, "resolved", 60.0, RESOLVED),
        ):
            writer.write(
                int(wall * 1000),
                {},
                documents={"alerts/events": _alert(wall, state, value, message)},
                wall_time_s=wall,
            )
    finally:
        writer.close()
    return str(root)


@pytest.fixture(scope="module")
def tb_url(logdir: str) -> Iterator[str]:
    with tensorboard_server(logdir, load_fast=True) as url:
        yield url


def _loss_rows(tb_url: str) -> list[list[Any]]:
    status, body = get_json(api_url(tb_url, "series", [("run", RUN), ("tag", "train/loss")]))
    assert status == 200
    return body["series"]["train/loss"]["rows"]


# -- mocked analytics routes (shapes from http_api.md) -------------------------


def _mock_bodies(tb_url: str) -> dict[str, Any]:
    rows = _loss_rows(tb_url)
    by_step = {int(r[1]): float(r[0]) for r in rows}
    t0, t1 = min(by_step.values()), max(by_step.values())
    anomalies = {
        "run": RUN,
        "anomalies": [
            {
                "tag": "train/loss",
                "type": "spike",
                "severity": "warning",
                "start_wall_time_s": by_step[SPIKE_STEP],
                "end_wall_time_s": by_step[SPIKE_STEP],
                "start_step": SPIKE_STEP,
                "end_step": SPIKE_STEP,
                "score": 19.0,
                "value": 25.0,
                "message": f"train/loss 25 at step {SPIKE_STEP} is 24x its rolling median (1.04)",
            },
            {
                "tag": "train/loss",
                "type": "non_finite",
                "severity": "critical",
                "start_wall_time_s": by_step[NAN_STEP],
                "end_wall_time_s": by_step[NAN_STEP],
                "start_step": NAN_STEP,
                "end_step": NAN_STEP,
                "score": None,
                "value": "NaN",
                "message": f"train/loss is NaN at step {NAN_STEP}",
            },
        ],
        "parameters": {"spike_ratio": 5.0, "window": 25, "lookback": 500},
    }
    buckets = 24
    cpu = [37.5 + 20 * math.sin(i / 3) for i in range(buckets)]
    heatmap = {
        "run": RUN,
        "start_wall_time_s": t0,
        "end_wall_time_s": t1,
        "bucket_s": (t1 - t0) / buckets,
        "rows": [
            {
                "tag": "system/cpu_percent",
                "unit": "%",
                "label": "CPU",
                "scale": "limit",
                "min": min(cpu),
                "max": max(cpu),
                "limit": 100.0,
                "values": cpu,
                "normalized": [v / 100 for v in cpu],
            },
            {
                "tag": "system/memory_used_bytes",
                "unit": "B",
                "label": "Memory used",
                "scale": "range",
                "min": 1.0e9,
                "max": 2.0e9,
                "limit": None,
                "values": [1.0e9 + 4e7 * i if i != 5 else None for i in range(buckets)],
                "normalized": [i / (buckets - 1) if i != 5 else None for i in range(buckets)],
            },
        ],
    }
    return {
        "alerts": {
            "run": RUN,
            "alerts": [
                _alert(by_step[ALERT_STEP], "firing", 97.5, FIRING),
                _alert(by_step[ALERT_STEP] + 0.5, "resolved", 60.0, RESOLVED),
            ],
        },
        "anomalies": anomalies,
        "heatmap": heatmap,
        "findings": {
            "run": RUN,
            "findings": [
                {
                    "id": "input_bound",
                    "severity": "warning",
                    "title": "The input pipeline is the likely bottleneck",
                    "text": "GPU utilization averaged 31 % while CPU was at 97 %: "
                    "the input pipeline is the likely bottleneck.",
                    "numbers": {"gpu_utilization_mean_percent": 31.0, "cpu_mean_percent": 97.0},
                }
            ],
        },
    }


def _mock_correlation(tags: list[str]) -> dict[str, Any]:
    k = len(tags)
    r = [[1.0 if i == j else round(0.9 - 0.3 * abs(i - j), 2) for j in range(k)] for i in range(k)]
    return {
        "run": RUN,
        "tags": tags,
        "grid_s": 0.1,
        "pearson": r,
        "spearman": [[v * 0.95 if v != 1.0 else v for v in row] for row in r],
        "n": [[20] * k for _ in range(k)],
    }


def _mock_scatter(x: str, y: str) -> dict[str, Any]:
    return {
        "run": RUN,
        "x": x,
        "y": y,
        "x_unit": "%",
        "y_unit": "",
        "grid_s": 0.1,
        "n": 20,
        "pearson": 0.6,
        "spearman": 0.57,
        "points": [[1.0e9 + i, 10.0 + i, 2.0 * i + (i % 3)] for i in range(20)],
    }


def _install_mocks(tab_context: Any, tb_url: str) -> None:
    bodies = _mock_bodies(tb_url)

    def handle(route: Any) -> None:
        url = urllib.parse.urlparse(route.request.url)
        name = url.path.rsplit("/", 1)[-1]
        q = urllib.parse.parse_qs(url.query)
        if name == "correlation":
            body = _mock_correlation(q.get("tag", []))
        elif name == "scatter":
            body = _mock_scatter(q["x"][0], q["y"][0])
        else:
            body = bodies[name]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    pattern = re.compile(r"/data/plugin/ttsmon/(" + "|".join(ROUTES) + r")\?")
    tab_context.route(pattern, handle)


# -- the test ------------------------------------------------------------------


def _chart(tab: Tab, chart_id: str) -> Any:
    return tab.frame.locator(f'.chart-card[data-chart="{chart_id}"]')


def _step_at_left_edge(tab: Tab, chart_id: str) -> int:
    over = _chart(tab, chart_id).locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    over.hover(position={"x": 1, "y": box["height"] / 2})
    x_value = _chart(tab, chart_id).locator(".u-legend .u-series").first.locator(".u-value")
    tab.frame.wait_for_function(
        "el => /^[0-9,]+$/.test(el.textContent.trim())", arg=x_value.element_handle()
    )
    return int(x_value.inner_text().replace(",", ""))


class _MockedTab(Tab):
    """A Tab whose context answers the analytics routes before the page loads."""

    def __init__(self, browser: Any, url: str) -> None:
        real_new_context = browser.new_context

        def new_context(**kwargs: Any) -> Any:
            context = real_new_context(**kwargs)
            _install_mocks(context, url)
            return context

        browser.new_context = new_context
        try:
            super().__init__(browser, url)
        finally:
            browser.new_context = real_new_context


@pytest.mark.parametrize("source", ["backend", "mocked"])
def test_analytics_views(browser: Any, tb_url: str, source: str, tmp_path: Any) -> None:
    wait_for_run(tb_url, RUN)
    expected_anomalies: list[dict[str, Any]]
    expected_findings: list[dict[str, Any]]
    if source == "backend":
        probes = {
            "alerts": [("run", RUN)],
            "anomalies": [("run", RUN)],
            "heatmap": [("run", RUN)],
            "correlation": [("run", RUN), ("tag", "system/cpu_percent"), ("tag", "train/loss")],
            "scatter": [("run", RUN), ("x", "system/cpu_percent"), ("y", "train/loss")],
            "findings": [("run", RUN)],
        }
        # the alert documents are in their own event file: wait until they are read
        deadline = time.monotonic() + 30
        while True:
            status, body = get_json(api_url(tb_url, "alerts", probes["alerts"]))
            if status != 200 or any(a["message"] == FIRING for a in body["alerts"]):
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.3)
        answers = {r: get_json(api_url(tb_url, r, p)) for r, p in probes.items()}
        failed = {r: status for r, (status, _) in answers.items() if status != 200}
        assert not failed, f"analytics routes must answer 200 (404: route missing): {failed}"
        expected_anomalies = answers["anomalies"][1]["anomalies"]
        expected_findings = answers["findings"][1]["findings"]
        tab = Tab(browser, tb_url)
    else:
        bodies = _mock_bodies(tb_url)
        expected_anomalies = bodies["anomalies"]["anomalies"]
        expected_findings = bodies["findings"]["findings"]
        tab = _MockedTab(browser, tb_url)
    try:
        frame, page = tab.frame, tab.page

        # Findings: the route's statements, or the quiet empty state.
        findings = frame.locator(".findings")
        findings.wait_for()
        if expected_findings:
            text = findings.inner_text()
            for f in expected_findings:
                assert f["text"] in text
                assert f["title"] in text
        else:
            assert frame.locator(".findings-empty").is_visible()

        # The alert list shows the planted alert, newest first.
        alerts = frame.locator('.section[data-section="alerts"]')
        row = alerts.locator(".alert-row", has_text=FIRING)
        row.wait_for()
        messages = alerts.locator(".alert-msg").all_inner_texts()
        assert messages.index(RESOLVED) < messages.index(FIRING)
        assert row.get_attribute("data-state") == "firing"
        # The severity filter: "Critical" hides the planted warning.
        alerts.locator('.seg-btn[data-severity="critical"]').click()
        assert alerts.locator(".alert-row", has_text=FIRING).count() == 0
        alerts.locator('.seg-btn[data-severity="warning"]').click()
        assert alerts.locator(".alert-row", has_text=FIRING).count() == 1
        # Alert bands are drawn on the System charts, with the message as tooltip.
        cpu_marks = _chart(tab, "cpu").locator(".alert-mark")
        cpu_marks.first.wait_for(state="attached")
        assert FIRING in (cpu_marks.first.get_attribute("title") or "")

        # An anomaly marker for the loss spike, its message as the tooltip.
        spikes = [
            a for a in expected_anomalies if a["tag"] == "train/loss" and a["type"] == "spike"
        ]
        assert spikes, expected_anomalies
        markers = _chart(tab, "loss").locator(".an-marker")
        markers.first.wait_for(state="attached")
        titles = [markers.nth(i).get_attribute("title") for i in range(markers.count())]
        assert any(s["message"] in titles for s in spikes), (titles, spikes)

        _chart(tab, "loss").screenshot(path=str(tmp_path / f"loss-markers-{source}.png"))
        _chart(tab, "cpu").screenshot(path=str(tmp_path / f"cpu-alert-band-{source}.png"))

        # Clicking the alert zooms every chart around its training step.
        frame.get_by_role("button", name="Step", exact=True).click()
        reset = frame.locator(".zoom-reset")
        assert reset.is_hidden()
        assert _step_at_left_edge(tab, "learning-rate") <= 2
        alerts.locator('.seg-btn[data-severity="all"]').click()
        alerts.locator(".alert-row", has_text=FIRING).click()
        reset.wait_for(state="visible")
        left = _step_at_left_edge(tab, "learning-rate")
        assert 10 <= left < ALERT_STEP, left
        page.mouse.move(0, 0)

        # Heatmap: drawn once scrolled to, one row per sampled metric.
        heatmap = frame.locator('.section[data-section="heatmap"]')
        heatmap.scroll_into_view_if_needed()
        labels = heatmap.locator(".hm-label")
        labels.first.wait_for()
        assert labels.count() >= 2
        canvas = heatmap.locator(".hm-canvas")
        painted = canvas.evaluate(
            """c => {
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return {n, h: c.clientHeight};
            }"""
        )
        assert painted["n"] > 0
        assert painted["h"] == 16 * labels.count()
        box = canvas.bounding_box()
        assert box is not None
        canvas.hover(position={"x": box["width"] * 0.5, "y": 8})
        tip = heatmap.locator(".hm-tip")
        tip.wait_for()
        assert labels.first.inner_text() in tip.inner_text()

        # Correlation: the matrix shows coefficients; a cell opens the scatter.
        corr = frame.locator('.section[data-section="correlation"]')
        corr.scroll_into_view_if_needed()
        cells = corr.locator(".corr-cell:not(.diag)")
        cells.first.wait_for()
        assert corr.locator(".corr-chip").count() >= 2
        coefficients = [t for t in cells.locator(".corr-r").all_inner_texts() if t != "—"]
        assert coefficients and all(re.fullmatch(r"−?\d\.\d\d", t) for t in coefficients)
        assert "n " in cells.first.inner_text()
        with_value = corr.locator(".corr-cell:not(.diag)", has=frame.locator(".corr-r"))
        target = next(
            i
            for i in range(with_value.count())
            if with_value.nth(i).locator(".corr-r").inner_text() != "—"
        )
        with_value.nth(target).click()
        scatter = corr.locator(".corr-scatter")
        scatter.wait_for()
        frame.wait_for_function(
            "() => Number(document.querySelector('.corr-scatter').dataset.points) > 0"
        )
        assert "n " in scatter.locator(".scatter-stats").inner_text()
        corr.locator('.seg-btn:has-text("Spearman")').click()
        assert corr.locator(".corr-corner").inner_text() == "Spearman ρ"

        tab.screenshot(tmp_path / f"analytics-{source}-light.png")
        page.evaluate("document.body.classList.add('dark-mode')")
        frame.wait_for_function("document.documentElement.classList.contains('dark')")
        tab.screenshot(tmp_path / f"analytics-{source}-dark.png")
        assert tab.errors == []
    finally:
        tab.close()
