"""End to end: the TTS Monitor tab in a real TensorBoard, driven by a real Chromium.

A log directory is written with the real recorder (two runs; one named in
Amharic with ``<b>`` and ``&`` in it, with a NaN loss, inference requests with
stages and a tiny Keras model), a real ``tensorboard`` serves it (fast and
Python loaders, and once under ``--path_prefix``), and the tests check what a
user sees in the tab. Screenshots land in each test's ``tmp_path``.

Skipped where ``/usr/bin/chromium`` or the ``playwright`` package is missing
(``make test`` installs both), and in the suite's TensorFlow-free pass (the
tab is the same there; the Keras model needs TensorFlow).
"""

from __future__ import annotations

import csv
import io
import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from browserkit import SKIPS, Tab
from tbserver import tensorboard_server

pytestmark = SKIPS

# The run names as a user would see them; inserted as markup they would
# create a <b> element and swallow the "&".
AMHARIC_RUN = "ሙከራ-<b>&-1"
OTHER_RUN = "baseline"
IDLE_RUN = "idle"  # system samples only: no training, no inference
NAN_STEP = 25
STEPS = 50
REQUESTS = 50


def _loss(step: int) -> float:
    return 2.5 * math.exp(-step / 20) + 0.05


def _record(run_dir: str, *, seconds: float, nan_step: int | None, model: bool) -> None:
    import tb_plugin_ttsmon as ttsmon

    with ttsmon.Monitor(run_dir, interval=0.2, writer="event", flush_s=0.5) as mon:
        deadline = time.monotonic() + seconds
        step = request = 0
        while time.monotonic() < deadline or step < STEPS or request < REQUESTS:
            if step < STEPS:
                step += 1
                loss = math.nan if step == nan_step else _loss(step)
                mon.log_training(step, loss=loss, learning_rate=1e-3 * 0.98**step)
                mon.log_gradients(
                    step,
                    {"encoder/dense": np.full(4, 1.0 + step % 5), "decoder/out": np.full(3, 0.5)},
                )
                if step % 10 == 0:
                    mon.log_validation(step, loss=_loss(step) * 1.1, accuracy=step / 60)
            if request < REQUESTS:
                request += 1
                latency = 100 + 40 * math.sin(request / 4) + (request % 7) * 5
                mon.log_inference(
                    latency_ms=latency,
                    audio_seconds=latency / 1000 * (4 + request % 3),
                    batch_size=1,
                    stages={"gpt": latency * 0.7, "vocoder": latency * 0.3},
                )
            time.sleep(0.04)
        if model:
            import keras

            tiny = keras.Sequential(
                [keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(4)]
            )
            mon.log_model(tiny, name="tiny")


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("browser_logs")
    _record(str(root / AMHARIC_RUN), seconds=2.5, nan_step=NAN_STEP, model=True)
    # A two-GPU host: NVML faked at its lowest layer (the pynvml module), as
    # in tests/test_nvml.py, since this machine has no GPU.
    import sys

    import fake_nvml

    real = sys.modules.get("pynvml")
    sys.modules["pynvml"] = fake_nvml.FakeNvml(gpu_count=2)  # type: ignore[assignment]
    try:
        _record(str(root / OTHER_RUN), seconds=1.5, nan_step=None, model=False)
    finally:
        if real is not None:
            sys.modules["pynvml"] = real
        else:
            del sys.modules["pynvml"]
    import tb_plugin_ttsmon as ttsmon

    with ttsmon.Monitor(str(root / IDLE_RUN), interval=0.2, writer="event", flush_s=0.5):
        time.sleep(1.0)
    return str(root)


@pytest.fixture(scope="module", params=[True, False], ids=["load_fast", "python_loader"])
def tb_url(request: pytest.FixtureRequest, logdir: str) -> Iterator[str]:
    with tensorboard_server(logdir, load_fast=request.param) as url:
        yield url


def _chart(tab: Tab, chart_id: str) -> Any:
    return tab.frame.locator(f'.chart-card[data-chart="{chart_id}"]')


def test_tab_shows_runs_charts_and_facts(browser: Any, tb_url: str, tmp_path: Any) -> None:
    tab = Tab(browser, tb_url)
    try:
        page, frame = tab.page, tab.frame
        # TensorBoard lists the tab.
        assert page.get_by_role("tab", name="TTS Monitor").count() == 1

        # Both runs are selected; the Amharic name is text, "<b>" included, no markup made.
        chips = frame.locator(".run-chip .run-name").all_text_contents()
        assert sorted(chips) == sorted([AMHARIC_RUN, OTHER_RUN, IDLE_RUN])
        assert AMHARIC_RUN in frame.locator("body").inner_text()
        assert frame.locator("b").count() == 0

        # The overview shows each run's host and CPU cores.
        card = frame.locator(".ov-card", has=frame.locator(".ov-run", has_text=AMHARIC_RUN))
        card_text = card.inner_text()
        assert socket.gethostname() in card_text
        cores = card.locator(".stat", has=frame.locator(".stat-label", has_text="CPU cores"))
        assert cores.locator(".stat-value").inner_text() == str(psutil.cpu_count(logical=True))
        assert "tiny" in card_text  # the model's name
        assert "no GPU" in card_text  # this machine has none (NVML absent)

        # Charts are drawn: every section, one canvas per chart with data.
        for chart_id in ("cpu", "memory", "loss", "learning-rate", "latency", "rtf"):
            assert _chart(tab, chart_id).locator("canvas").count() == 1, chart_id
        canvases = frame.locator(".chart-card canvas").count()
        assert canvases >= 15
        # The two-GPU run has one line per GPU on each GPU chart.
        gpu_card = frame.locator(".ov-card", has=frame.locator(".ov-run", has_text=OTHER_RUN))
        assert "H100" in gpu_card.inner_text()
        for chart_id in ("gpu-util", "gpu-memory", "gpu-temperature", "gpu-power"):
            chart = _chart(tab, chart_id)
            assert chart.locator("canvas").count() == 1, chart_id
            legend = chart.inner_text()
            assert "GPU 0" in legend and "GPU 1" in legend, (chart_id, legend)

        # The NaN loss is marked at its step, with a tooltip that says so.
        markers = _chart(tab, "loss").locator(".nf-marker")
        assert markers.count() >= 1
        titles = [markers.nth(i).get_attribute("title") or "" for i in range(markers.count())]
        assert any(
            "NaN" in t and "train/loss" in t and AMHARIC_RUN in t and f"step {NAN_STEP}," in t
            for t in titles
        ), titles

        tab.screenshot(tmp_path / "tab-light.png")
        assert tab.errors == []
    finally:
        tab.close()


def test_hover_legend_shows_logged_values(browser: Any, tb_url: str) -> None:
    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        frame.get_by_role("button", name="Step", exact=True).click()
        frame.wait_for_function("Number(document.body.dataset.renders) >= 1")
        over = _chart(tab, "loss").locator(".u-over")
        box = over.bounding_box()
        assert box is not None
        # Hover at about step 40 (x spans steps 1..50).
        over.hover(position={"x": box["width"] * 0.78, "y": box["height"] / 2})
        legend = _chart(tab, "loss").locator(".u-legend")
        frame.wait_for_function(
            "el => !el.querySelector('.u-series .u-value').textContent.includes('latest')",
            arg=legend.element_handle(),
        )
        x_row = legend.locator(".u-series").first
        assert x_row.locator(".u-label").inner_text() == "Step"
        step = int(x_row.locator(".u-value").inner_text().replace(",", ""))
        rows = legend.locator(".u-series")
        values = {}
        for i in range(1, rows.count()):
            label = rows.nth(i).locator(".u-label").inner_text()
            values[label] = rows.nth(i).locator(".u-value").inner_text()
        train = values[f"{AMHARIC_RUN} · train"]
        # float32 on disk, 4 significant digits on screen
        assert train == f"{np.float32(_loss(step)):.4g}", (step, values)

        # Hovering at the NaN step shows NaN in the legend.
        over.hover(position={"x": box["width"] * (NAN_STEP - 1) / (STEPS - 1), "y": 20})
        frame.wait_for_function("el => el.textContent.includes('NaN')", arg=legend.element_handle())
        assert tab.errors == []
    finally:
        tab.close()


def test_drag_zooms_every_chart_and_double_click_resets(browser: Any, tb_url: str) -> None:
    tab = Tab(browser, tb_url)
    try:
        frame, page = tab.frame, tab.page
        frame.get_by_role("button", name="Step", exact=True).click()
        frame.wait_for_function("Number(document.body.dataset.renders) >= 1")
        reset = frame.locator(".zoom-reset")
        assert reset.is_hidden()

        def step_at_left_edge(chart_id: str) -> int:
            over = _chart(tab, chart_id).locator(".u-over")
            box = over.bounding_box()
            assert box is not None
            over.hover(position={"x": 1, "y": box["height"] / 2})
            x_value = _chart(tab, chart_id).locator(".u-legend .u-series").first
            frame.wait_for_function(
                "el => /^[0-9,]+$/.test(el.textContent.trim())",
                arg=x_value.locator(".u-value").element_handle(),
            )
            return int(x_value.locator(".u-value").inner_text().replace(",", ""))

        assert step_at_left_edge("learning-rate") <= 2
        # Drag across the loss chart from about step 25 to step 38.
        over = _chart(tab, "loss").locator(".u-over")
        box = over.bounding_box()
        assert box is not None
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.5, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.62, y, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
        page.mouse.up()
        reset.wait_for(state="visible")
        # Another chart now starts where the drag started.
        assert 20 <= step_at_left_edge("learning-rate") <= 30
        over.dblclick(position={"x": box["width"] / 2, "y": box["height"] / 2})
        reset.wait_for(state="hidden")
        assert step_at_left_edge("learning-rate") <= 2
        assert tab.errors == []
    finally:
        tab.close()


def test_empty_states_for_a_run_without_training_or_inference(
    browser: Any, tb_url: str, tmp_path: Any
) -> None:
    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        frame.locator(".picker-btn").click()
        frame.get_by_role("button", name="None", exact=True).click()
        frame.locator(".picker-row", has=frame.locator(".run-name", has_text=IDLE_RUN)).click()
        tab.page.keyboard.press("Escape")
        frame.wait_for_function(
            "document.querySelectorAll('.run-chip').length === 1"
            " && document.querySelectorAll('.ov-card').length === 1"
        )
        system = frame.locator('.section[data-section="system"]')
        system.locator(".chart-card canvas").first.wait_for()
        assert "This run has no GPU" in system.inner_text()
        training = frame.locator('.section[data-section="training"]')
        assert "No training data yet" in training.locator(".section-empty").inner_text()
        assert training.locator(".chart-card").count() == 0
        inference = frame.locator('.section[data-section="inference"]')
        assert "No inference data yet" in inference.locator(".section-empty").inner_text()
        tab.screenshot(tmp_path / "tab-idle-run.png")
        assert tab.errors == []
    finally:
        tab.close()


def test_dark_mode_under_path_prefix(browser: Any, logdir: str, tmp_path: Any) -> None:
    with tensorboard_server(logdir, load_fast=True, path_prefix="/tb") as url:
        tab = Tab(browser, url, dark=True)
        try:
            assert tab.page.evaluate("document.body.classList.contains('dark-mode')")
            assert tab.frame.evaluate("document.documentElement.classList.contains('dark')")
            background = tab.frame.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background == "rgb(32, 33, 36)"
            assert tab.frame.url.startswith(url)
            assert _chart(tab, "cpu").locator("canvas").count() == 1
            assert _chart(tab, "loss").locator(".nf-marker").count() >= 1
            tab.screenshot(tmp_path / "tab-dark.png")

            # TensorBoard's light/dark switch is followed without a reload.
            tab.page.evaluate("document.body.classList.remove('dark-mode')")
            tab.frame.wait_for_function("!document.documentElement.classList.contains('dark')")
            assert tab.errors == []
        finally:
            tab.close()


def test_tensorboard_reload_button_refreshes_the_tab(browser: Any, logdir: str) -> None:
    with tensorboard_server(logdir, load_fast=True) as url:
        tab = Tab(browser, url)
        try:
            frame = tab.frame
            auto = frame.locator(".toggle-btn")
            auto.click()  # pause the tab's own refresh
            assert auto.inner_text() == "Paused"
            tab.page.wait_for_timeout(500)
            before = tab.refreshes()
            tab.page.locator("button.reload-button").click()
            frame.wait_for_function(f"window.__ttsmon.refreshes > {before}", timeout=20_000)
            assert tab.errors == []
        finally:
            tab.frame.locator(".toggle-btn").click()  # leave auto-refresh on for later pages
            tab.close()


def test_chart_exports(browser: Any, tb_url: str) -> None:
    tab = Tab(browser, tb_url)
    try:
        loss = _chart(tab, "loss")
        loss.hover()
        with tab.page.expect_download() as info:
            loss.get_by_role("button", name="Download CSV").click()
        with open(info.value.path(), encoding="utf-8") as f:
            text = f.read()
        rows = list(csv.DictReader(io.StringIO(text)))
        amharic = [r for r in rows if r["run"] == AMHARIC_RUN and r["tag"] == "train/loss"]
        assert len(amharic) == STEPS
        by_step = {int(r["step"]): r["value"] for r in amharic}
        assert by_step[NAN_STEP] == "nan"
        assert float(by_step[10]) == pytest.approx(_loss(10), rel=1e-6)
        assert info.value.suggested_filename.endswith(".csv")

        with tab.page.expect_download() as info:
            loss.get_by_role("button", name="Download PNG").click()
        with open(info.value.path(), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert tab.errors == []
    finally:
        tab.close()


def test_an_ethiopic_font_is_installed_and_named_in_the_font_stack() -> None:
    """Amharic renders as Ge'ez glyphs only where a font has them: the test
    machine installs one (Makefile: fonts-sil-abyssinica), the tab names it."""
    import shutil
    import subprocess

    if shutil.which("fc-list") is None:
        pytest.skip("fontconfig's fc-list is not installed")
    fonts = subprocess.run(["fc-list", ":lang=am", "family"], capture_output=True, text=True)
    assert fonts.stdout.strip(), "no font with Ethiopic glyphs is installed"
    css = (Path(__file__).parent.parent / "tb_plugin_ttsmon" / "static" / "index.css").read_text(
        encoding="utf-8"
    )
    assert '"Abyssinica SIL"' in css and '"Noto Sans Ethiopic"' in css
