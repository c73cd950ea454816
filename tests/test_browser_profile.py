"""End to end: the tab's Profiler panel, its bands on the charts and its deep
links into TensorBoard's Profile tab, in a real TensorBoard driven by a real
Chromium.

One run is recorded with the real recorder while a tiny Keras model trains;
a few of its steps are captured with TensorFlow's profiler into the same run
directory (where the Profile tab finds them), and the capture is described by
a ``profile/sessions`` document written with the recorder's own event writer.
TensorBoard runs under a ``--path_prefix``, so the links' relative form is
tested too. Two sources for the ``profiles`` route:

- ``backend``: the plugin's route (any answer but 200, 404 included, fails);
- ``mocked``: the route answered by Playwright with a document of the shape in
  ``tb_plugin_ttsmon/plugin/http_api.md``, naming the real capture, so that the
  links open the real Profile tab.

Screenshots (light and dark) land in each test's ``tmp_path``.
"""

from __future__ import annotations

import json
import os
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

# Capturing a profile needs TensorFlow (`needs_tf` is session-scoped, so it
# skips, or fails under CI, before the module's capture fixture runs).
pytestmark = [*SKIPS, pytest.mark.usefixtures("needs_tf")]

RUN = "profile-ሙከራ"
PREFIX = "/tb"
STEPS = 30
PROFILE_START = 12
PROFILE_STEPS = 4
TOOLS = ("trace_viewer", "memory_profile", "framework_op_stats", "overview_page")
SUGGESTION = (
    "31.0 % of each step waits for input: prefetch, cache or parallelize the tf.data pipeline."
)


def _capture(run_dir: str) -> dict[str, Any]:
    """Trains a tiny model, profiling a few steps; returns the session document."""
    import numpy as np
    import tensorflow as tf

    import tb_plugin_ttsmon as ttsmon

    model = tf.keras.Sequential(
        [tf.keras.Input((8,)), tf.keras.layers.Dense(16, "relu"), tf.keras.layers.Dense(1)]
    )
    opt = tf.keras.optimizers.SGD(0.01)
    x = tf.constant(np.random.default_rng(0).normal(size=(32, 8)), tf.float32)
    y = tf.reduce_sum(x, axis=1, keepdims=True)

    @tf.function
    def train_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - y) ** 2)
        opt.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )
        return loss

    doc: dict[str, Any] = {}
    with ttsmon.Monitor(run_dir, interval=0.2, writer="event", gpus=False, flush_s=0.5) as mon:
        for step in range(1, STEPS + 1):
            if step == PROFILE_START:
                doc["start_wall_time_s"] = time.time()
                tf.profiler.experimental.start(run_dir)
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                loss = float(train_step())
            mon.log_training(step, loss=loss, learning_rate=0.01)
            if step == PROFILE_START + PROFILE_STEPS - 1:
                tf.profiler.experimental.stop()
                doc["stop_wall_time_s"] = time.time()
            time.sleep(0.05)
        time.sleep(0.4)
    profile_root = os.path.join(run_dir, "plugins", "profile")
    (session,) = os.listdir(profile_root)
    files = sorted(
        f for f in os.listdir(os.path.join(profile_root, session)) if f.endswith(".xplane.pb")
    )
    assert files, os.listdir(os.path.join(profile_root, session))
    doc.update(
        session=session,
        session_dir=f"plugins/profile/{session}",
        hosts=[f[: -len(".xplane.pb")] for f in files],
        trigger="steps",
        start_step=PROFILE_START,
        stop_step=PROFILE_START + PROFILE_STEPS,
        status="ok",
        error=None,
        files=[
            {"name": f, "size_bytes": os.path.getsize(os.path.join(profile_root, session, f))}
            for f in files
        ],
    )
    return doc


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    from tb_plugin_ttsmon.recorder.writers import create_writer

    root = tmp_path_factory.mktemp("profile_logs")
    run_dir = str(root / RUN)
    doc = _capture(run_dir)
    writer = create_writer("event", run_dir)
    try:
        wall = doc["stop_wall_time_s"]
        writer.write(int(wall * 1000), {}, documents={"profile/sessions": doc}, wall_time_s=wall)
    finally:
        writer.close()
    return str(root), doc


@pytest.fixture(scope="module")
def tb_url(capture: tuple[str, dict[str, Any]]) -> Iterator[str]:
    with tensorboard_server(capture[0], load_fast=True, path_prefix=PREFIX) as url:
        yield url


def _link(session: str, host: str, tool: str) -> str:
    """A deep link as http_api.md documents it: relative to <root>/data/plugin/ttsmon/."""
    q = "&".join(
        f"{k}={urllib.parse.quote(v, safe='')}"
        for k, v in (("run", f"{RUN}/{session}"), ("tag", tool), ("host", host))
    )
    return f"../../../?{q}#profile"


def _mock_body(doc: dict[str, Any]) -> dict[str, Any]:
    host = doc["hosts"][0]
    return {
        "run": RUN,
        "xprof": {"available": True, "version": "2.24.2", "reason": None},
        "sessions": [
            {
                "session": doc["session"],
                "trigger": doc["trigger"],
                "start_wall_time_s": doc["start_wall_time_s"],
                "stop_wall_time_s": doc["stop_wall_time_s"],
                "start_step": doc["start_step"],
                "stop_step": doc["stop_step"],
                "hosts": [
                    {
                        "host": h,
                        "file": f["name"],
                        "size_bytes": f["size_bytes"],
                        "status": "ok",
                        "error": None,
                    }
                    for h, f in zip(doc["hosts"], doc["files"])
                ],
                "summary": {
                    "host": host,
                    "step_time_ms_mean": 212.4,
                    "step_time_ms_stddev": 8.1,
                    "steps": PROFILE_STEPS,
                    "input_ms_mean": 61.0,
                    "compute_ms_mean": 140.2,
                    "other_ms_mean": 11.2,
                    "input_percent": 31.0,
                    "verdict": "input_bound",
                    "top_ops": [
                        {
                            "name": "MatMul",
                            "type": "MatMul",
                            "self_time_ms": 1.5,
                            "self_time_percent": 31.2,
                            "occurrences": 12,
                        },
                        {
                            "name": "<b>BiasAdd</b>",
                            "type": "BiasAdd",
                            "self_time_ms": 0.4,
                            "self_time_percent": 8.0,
                            "occurrences": 8,
                        },
                    ],
                    "peak_memory_bytes": 1288490188,
                    "suggestions": [
                        {"id": "input_bound", "severity": "warning", "text": SUGGESTION}
                    ],
                },
                "links": {tool: _link(doc["session"], host, tool) for tool in TOOLS},
            }
        ],
    }


class _MockedTab(Tab):
    """A Tab whose context answers `profiles` (and counts the requests)."""

    def __init__(self, browser: Any, url: str, body: dict[str, Any], asked: list[str]) -> None:
        real_new_context = browser.new_context

        def handle(route: Any) -> None:
            asked.append(route.request.url)
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

        def new_context(**kwargs: Any) -> Any:
            context = real_new_context(**kwargs)
            context.route(re.compile(r"/data/plugin/ttsmon/profiles\?"), handle)
            return context

        browser.new_context = new_context
        try:
            super().__init__(browser, url)
        finally:
            browser.new_context = real_new_context


def _chart(tab: Tab, chart_id: str) -> Any:
    return tab.frame.locator(f'.chart-card[data-chart="{chart_id}"]')


@pytest.mark.parametrize("source", ["backend", "mocked"])
def test_profiler_panel_bands_and_deep_links(
    browser: Any, tb_url: str, capture: tuple[str, dict[str, Any]], source: str, tmp_path: Any
) -> None:
    _, doc = capture
    session = doc["session"]
    wait_for_run(tb_url, RUN)
    asked: list[str] = []
    if source == "backend":
        status, body = get_json(api_url(tb_url, "profiles", [("run", RUN)]))
        assert status == 200, f"GET profiles answered {status}: the route must exist"
        deadline = time.monotonic() + 60
        while not any(s["session"] == session for s in body["sessions"]):
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
            body = get_json(api_url(tb_url, "profiles", [("run", RUN)]))[1]
        tab = Tab(browser, tb_url)
    else:
        tab = _MockedTab(browser, tb_url, _mock_body(doc), asked)
    try:
        frame, page = tab.frame, tab.page

        # The Profiler panel: one card for the captured session.
        panel = frame.locator('.section[data-section="profiler"]')
        card = panel.locator(f'.prof-card[data-session="{session}"]')
        card.wait_for()
        assert panel.locator(".prof-card").count() == 1
        text = card.inner_text()
        assert session in text
        assert f"steps {PROFILE_START}–{PROFILE_START + PROFILE_STEPS}" in text
        assert "→" in text  # the time window
        host_chip = card.locator(".prof-host")
        assert host_chip.count() == len(doc["hosts"])
        assert doc["hosts"][0] in host_chip.first.inner_text()
        labels = card.locator(".prof-link").all_inner_texts()
        assert labels == [
            "Execution timeline",
            "Memory analysis",
            "Operation profiling",
            "Overview",
        ]
        if source == "mocked":
            # the summary's numbers, a suggestion citing its own, the ops as text
            card.locator(".prof-step-time").wait_for()
            assert "212 ms ± 8.1 ms (4 steps)" in card.inner_text()
            assert "Input-bound" in card.locator(".prof-verdict").inner_text()
            assert SUGGESTION in card.locator(".prof-suggestion").inner_text()
            assert "<b>BiasAdd</b>" in card.locator(".prof-ops").inner_text()
            assert frame.locator("b").count() == 0
            assert "1.2 GiB" in card.inner_text() or "1.20 GiB" in card.inner_text()
        else:
            # the backend's summary arrives after one or more refreshes
            card.locator(".prof-summary").wait_for()

        # The profiled window is a band on every chart: training and system,
        # in wall-time and step modes, named in its tooltip.
        for chart_id in ("loss", "cpu"):
            band = _chart(tab, chart_id).locator(".profile-mark")
            band.first.wait_for(state="attached")
            assert session in (band.first.get_attribute("title") or "")
        _chart(tab, "loss").screenshot(path=str(tmp_path / f"loss-profile-band-{source}.png"))
        frame.get_by_role("button", name="Step", exact=True).click()
        for chart_id in ("loss", "cpu"):
            band = _chart(tab, chart_id).locator(".profile-mark")
            band.first.wait_for(state="attached")
            assert f"steps {PROFILE_START}" in (band.first.get_attribute("title") or "")
        _chart(tab, "loss").screenshot(path=str(tmp_path / f"loss-profile-band-step-{source}.png"))
        frame.get_by_role("button", name="Wall", exact=True).click()

        if source == "mocked":
            # one `profiles` request per selected run per refresh
            refreshes = tab.refreshes()
            runs = {urllib.parse.parse_qs(urllib.parse.urlparse(u).query)["run"][0] for u in asked}
            assert runs == {RUN}
            assert len(asked) <= refreshes + 1, (len(asked), refreshes)

        panel.scroll_into_view_if_needed()
        tab.screenshot(tmp_path / f"profiler-{source}-light.png")
        page.evaluate("document.body.classList.add('dark-mode')")
        frame.wait_for_function("document.documentElement.classList.contains('dark')")
        tab.screenshot(tmp_path / f"profiler-{source}-dark.png")
        page.evaluate("document.body.classList.remove('dark-mode')")
        errors = tab.errors
        assert errors == []

        # "Operation profiling" opens TensorBoard's Profile tab on this run,
        # session, host and tool (the whole page navigates, not our iframe).
        host = doc["hosts"][0]
        card.locator('.prof-link[data-tool="framework_op_stats"]').click()
        page.wait_for_url(re.compile(r"#profile"))
        url = urllib.parse.urlparse(page.url)
        assert url.path == f"{PREFIX}/"
        assert url.fragment == "profile"
        q = urllib.parse.parse_qs(url.query)
        assert q["run"] == [f"{RUN}/{session}"]
        assert q["tag"] == ["framework_op_stats"]
        assert q["host"] == [host]
        profile_iframe = page.wait_for_selector(
            'iframe[src*="plugin_entry.html?name=profile"]', timeout=60_000
        )
        profile = profile_iframe.content_frame()
        assert profile is not None
        profile.wait_for_function(
            "s => document.body && document.body.innerText.includes(s)", arg=session, timeout=60_000
        )
        profile.wait_for_function(
            "document.body.innerText.includes('Framework Op Stats')", timeout=60_000
        )
        page.wait_for_timeout(1500)
        page.screenshot(path=str(tmp_path / f"profile-tab-{source}.png"), full_page=False)
    finally:
        tab.close()
