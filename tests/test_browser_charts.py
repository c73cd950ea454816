"""End to end: every series the recorder writes is drawn in the tab.

One run holds every series of metadata.py's table: the real Monitor samples a
two-GPU host (NVML faked at its lowest layer, tests/fake_nvml.py, with a power
cap active on GPU 0) and logs training and inference; the series this machine
cannot produce (cgroup limits, TensorFlow's GPU allocator) are written into the
same run with the recorder's own event writer. A real TensorBoard serves it
and Chromium shows the tab. The test asserts on what a user sees: a chart
titled as the catalogue says for each series family, with the legend text the
catalogue gives, and the values in the legend.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from browserkit import SKIPS, Tab, api_url, get_json
from tbserver import tensorboard_server

from tb_plugin_ttsmon import catalogue, metadata

pytestmark = SKIPS

RUN = "every-series"
GIB = 1024**3
PLACEHOLDERS = ("gpu", "core", "layer", "stage", "name")
SCREENSHOT = Path("/tmp/ttsmon-every-series.png")


def _record(run_dir: str) -> None:
    import fake_nvml

    import tb_plugin_ttsmon as ttsmon
    from tb_plugin_ttsmon.recorder import writers

    fake = fake_nvml.FakeNvml(gpu_count=2)
    fake.gpus[0].clock_event_reasons = 0x4  # NVML's SwPowerCap: the power cap holds the clocks
    fake.gpus[0].compute_processes = [fake_nvml.FakeProcess(os.getpid(), 3 * GIB)]
    real = sys.modules.get("pynvml")
    sys.modules["pynvml"] = fake  # type: ignore[assignment]
    try:
        with ttsmon.Monitor(run_dir, interval=0.2, writer="event", flush_s=0.5) as mon:
            for step in range(1, 41):
                with mon.step(step):  # the step phases: time inside and between steps
                    time.sleep(0.01)
                mon.log_training(
                    step,
                    loss=2.0 / step,
                    accuracy=step / 50,
                    learning_rate=1e-3,
                    gradient_norm=1.0 + step % 3,
                    tokens_per_s=900.0 + step,
                    loss_scale=32768.0 / 2 ** (step // 10),  # the Keras callback's
                    traces_count=1 + step // 20,
                )
                mon.log_gradients(step, {"encoder/dense": [1.0, 2.0], "decoder/out": [0.5]})
                if step % 10 == 0:
                    mon.log_validation(
                        step, loss=2.2 / step, accuracy=step / 60, tokens_per_s=880.0
                    )
                mon.log_inference(
                    latency_ms=80.0 + step,
                    audio_seconds=0.5,
                    batch_size=1 + step % 2,
                    stages={"gpt": 50.0, "vocoder": 30.0 + step},
                )
                # A streamed request: first audio, segments with tokens, the prompt cache.
                with mon.time_inference() as req:
                    req.cache_hit = step % 3 != 0
                    with req.stage("gpt_gen"):
                        time.sleep(0.002)
                    req.segment(audio_seconds=0.3, tokens=12)
                    req.segment(audio_seconds=0.2, tokens=8)
                time.sleep(0.05)
            time.sleep(0.5)
    finally:
        if real is not None:
            sys.modules["pynvml"] = real
        else:
            del sys.modules["pynvml"]

    # What this machine cannot produce: a cgroup with limits, TensorFlow on
    # GPUs, and a sampler that falls behind (skipped ticks).
    writer = writers.EventFileSummaryWriter(run_dir)
    try:
        now = time.time()
        for i in range(10):
            wall = now - 2.0 + i * 0.2
            writer.write(
                metadata.sample_step(wall),
                {
                    "container/cpu_limit_cores": 4.0,
                    "container/cpu_usage_cores": 1.5 + 0.1 * i,
                    "container/cpu_percent_of_limit": 100 * (1.5 + 0.1 * i) / 4,
                    "container/memory_limit_bytes": 16.0 * GIB,
                    "container/memory_used_bytes": (6.0 + 0.2 * i) * GIB,
                    "container/memory_percent_of_limit": 100 * (6.0 + 0.2 * i) / 16,
                    "tf/gpu/0/memory_current_bytes": 2.0 * GIB,
                    "tf/gpu/0/memory_peak_bytes": 2.5 * GIB,
                    "tf/gpu/1/memory_current_bytes": 1.0 * GIB,
                    "tf/gpu/1/memory_peak_bytes": 1.25 * GIB,
                    "sampler/skipped_ticks_count": float(i // 5),
                },
                wall_time_s=wall,
            )
    finally:
        writer.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("every_series")
    _record(str(root / RUN))
    return str(root)


@pytest.fixture(scope="module")
def tb_url(logdir: str) -> Iterator[str]:
    with tensorboard_server(logdir, load_fast=True) as url:
        yield url


def _run_tags(tb_url: str) -> list[str]:
    """The run's tags once TensorBoard has loaded all of them."""
    deadline = time.monotonic() + 60
    while True:
        status, body = get_json(api_url(tb_url, "tags", [("run", RUN)]))
        tags = [t["tag"] for t in (body or {}).get("tags", [])] if status == 200 else []
        if {"tf/gpu/1/memory_peak_bytes", "train/loss", "gpu/0/power_w"} <= set(tags):
            return tags
        if time.monotonic() > deadline:
            raise AssertionError(f"run not loaded: {status} {tags}")
        time.sleep(0.5)


def _cards(tab: Tab) -> dict[str, dict[str, Any]]:
    """Every chart card as a user sees it: title, legend labels and values, canvas."""
    cards = tab.frame.evaluate(
        """() => [...document.querySelectorAll('.chart-card')].map((c) => ({
            id: c.dataset.chart.split('\\u0000')[0],
            section: c.closest('.section').dataset.section,
            title: c.querySelector('.chart-title').textContent,
            tooltip: c.querySelector('.chart-title').title,
            canvases: c.querySelectorAll('canvas').length,
            labels: [...c.querySelectorAll('.u-legend .u-series')].slice(1)
                .map((s) => s.querySelector('.u-label').textContent),
            values: [...c.querySelectorAll('.u-legend .u-series')].slice(1)
                .map((s) => s.querySelector('.u-value').textContent),
        }))"""
    )
    return {c["id"]: c for c in cards}


def test_every_series_has_a_chart_with_its_title_and_legend(browser: Any, tb_url: str) -> None:
    tags = _run_tags(tb_url)
    # The run really holds every series of the format.
    globs = {
        s.pattern: catalogue.fill(s.pattern, dict.fromkeys(PLACEHOLDERS, "*"))
        for s in metadata.METRICS
    }
    lacking = [p for p, g in globs.items() if not any(fnmatch.fnmatchcase(t, g) for t in tags)]
    assert lacking == [], "the fixture lacks these series"

    cat = catalogue.load()
    planned = [p for s in cat.sections for p in cat.plan(s.id, tags)]
    drawn = {ln.tag for p in planned for ln in p.lines}
    assert sorted(set(tags) - drawn) == [], "recorded tags no chart draws"

    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        frame.locator('.chart-card[data-chart="tf-memory"] canvas').wait_for()
        cards = _cards(tab)
        for p in planned:
            card = cards.get(p.id)
            assert card is not None, f"no chart {p.id!r} ({p.title})"
            assert card["title"] == p.title, (p.id, card["title"])
            assert card["section"] == p.spec.section, p.id
            assert card["canvases"] == 1, p.id
            # One run: a line's legend text is its label, or the run where it has none.
            want = [ln.label or RUN for ln in p.lines]
            assert sorted(card["labels"]) == sorted(want), (p.id, card["labels"])

        # The series families of issue 9, as a user reads them.
        def legend(chart_id: str) -> dict[str, str]:
            c = cards[chart_id]
            return dict(zip(c["labels"], c["values"], strict=True))

        assert cards["cpu"]["title"] == "CPU utilization, all cores"
        assert "every core" in cards["cpu"]["tooltip"]
        assert cards["process-cpu"]["title"] == "Process CPU"
        assert "(% of one core)" in cards["process-cpu"]["tooltip"]
        cores = cards["cpu-cores"]["labels"]
        n_cores = len(psutil.cpu_times(percpu=True))
        if n_cores <= 10:
            assert cores == [f"core {i}" for i in range(n_cores)]
        else:  # the 10 busiest as lines, every core in the heatmap below
            assert len(cores) == 10 and set(cores) <= {f"core {i}" for i in range(n_cores)}
        assert cards["swap"]["title"] == "Swap used"
        assert set(legend("gpu-clocks")) == {"GPU 0 SM", "GPU 0 memory", "GPU 1 SM", "GPU 1 memory"}
        assert legend("gpu-clocks")["GPU 0 SM"] == "1,980 MHz"
        power = legend("gpu-power")
        assert power["GPU 0 limit"] == "700 W" and power["GPU 0"] == "312.5 W"
        throttle = legend("gpu-throttle")
        assert throttle["GPU 0 power"] == "yes" and throttle["GPU 0 thermal"] == "no"
        assert throttle["GPU 1 power"] == "no"
        assert legend("gpu-clock-reasons") == {"GPU 0": "0x4 power cap", "GPU 1": "0 none"}
        tf = legend("tf-memory")
        assert tf["TF GPU 0"] == "2 GiB" and tf["TF GPU 0 peak"] == "2.5 GiB"
        assert tf["TF GPU 1 peak"] == "1.25 GiB"
        assert legend("gpu-memory")["GPU 0 process"] == "3 GiB"
        assert legend("container-cpu")["limit"] == "4 cores"
        assert legend("container-memory")["limit"] == "16 GiB"
        assert cards["container-cpu-percent"]["title"] == "Container CPU, % of quota"
        assert cards["sampler-cost"]["title"] == "Sampler cost"
        assert legend("sampler-cost")[RUN].endswith(" ms")
        assert cards["metric-tokens_per_s"]["title"] == "Tokens per s"
        assert legend("loss-scale")[RUN] == "2,048"  # 32768 halved 4 times by step 40
        assert cards["traces"]["title"] == "Step function traces"
        # The time no stage covers is a stage of its own.
        assert set(legend("stage-latency")) == {"gpt", "gpt_gen", "vocoder", "unattributed"}
        assert set(legend("cold-warm")) == {"cold", "warm"}
        assert set(legend("stage-tokens-per-s")) == {"gpt_gen"}

        # The throttle lanes sit right under the GPU charts.
        order = list(cards)
        lanes = ("gpu-throttle", "gpu-clock-reasons")
        gpu = [i for i, c in enumerate(order) if c.startswith("gpu-") and c not in lanes]
        assert order[max(gpu) + 1 : max(gpu) + 3] == list(lanes)

        tab.screenshot(SCREENSHOT)
        # The page shows the tab's top; the rest is in the scrolled iframe.
        frame.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        tab.screenshot(SCREENSHOT.with_name("ttsmon-every-series-end.png"))
        assert tab.errors == []
    finally:
        tab.close()


def test_lanes_are_short_strips(browser: Any, tb_url: str) -> None:
    _run_tags(tb_url)
    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        lane = frame.locator('.chart-card[data-chart="gpu-throttle"] canvas')
        full = frame.locator('.chart-card[data-chart="gpu-power"] canvas')
        lane.wait_for()
        lane_box, full_box = lane.bounding_box(), full.bounding_box()
        assert lane_box is not None and full_box is not None
        assert lane_box["height"] < full_box["height"] / 2
        # A strip across the whole grid, not one card of a row.
        assert lane_box["width"] > 2 * full_box["width"]
        assert tab.errors == []
    finally:
        tab.close()


def test_sections_and_panels_collapse_alike(browser: Any, tb_url: str) -> None:
    """Chart sections and analytics panels come from one builder: the same
    head, the same collapsing, one stored state."""
    _run_tags(tb_url)
    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        for section, content in (("system", ".chart-card"), ("alerts", ".panel-empty")):
            root = frame.locator(f'.section[data-section="{section}"]')
            head = root.locator(".section-head")
            assert head.get_attribute("aria-expanded") == "true"
            assert root.locator(content).first.is_visible()
            head.click()
            assert head.get_attribute("aria-expanded") == "false"
            assert root.locator(content).first.is_hidden()
        stored = frame.evaluate("localStorage.getItem('ttsmon.collapsed')")
        assert sorted(json.loads(stored)) == ["alerts", "system"]
        frame.locator('.section[data-section="system"] .section-head').click()
        assert frame.locator('.chart-card[data-chart="cpu"]').is_visible()
        assert tab.errors == []
    finally:
        tab.close()
