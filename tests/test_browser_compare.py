"""End to end: the Compare panel of two selected runs (issue 14).

Three runs written with the recorder's event writer at chosen wall times
(as tests/test_compare.py writes them): A, named with markup and Ge'ez
script, takes 10 ms a step with 10 GiB of GPU memory and XLA off; B
("xla-on") takes 8 ms a step with 8 GiB and XLA on, and reaches the same
validation loss sooner; a third run is like A. A real TensorBoard serves
them and Chromium shows the tab. The tests select exactly two runs in the
picker as a user does and read what a user reads against the `compare`
route's own answer: the verdict, the B/A speed label with its interval,
the setup difference (XLA off → on), the GPU memory row's −20 %, the run
names as text; then Swap A/B, and a third run selected (the hint again).

Screenshots (light, dark, narrow) land in the test's ``tmp_path`` and are
copied to ``/tmp/ttsmon-compare*.png``.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from browserkit import SKIPS, Tab, api_url, get_json
from comparedata import STEPS, write_run
from tbserver import tensorboard_server

pytestmark = SKIPS

RUN_A = "<img src=x onerror=alert(1)> ሙከራ"
RUN_B = "xla-on"
RUN_C = "same"
ALL_RUNS = [RUN_A, RUN_B, RUN_C]


# -- the log directory -----------------------------------------------------------


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    write_run(str(root / RUN_A), step_ms=10.0, gpu_gib=10.0, xla=False, seed=1)
    write_run(str(root / RUN_B), step_ms=8.0, gpu_gib=8.0, xla=True, seed=2, val_speed=1.3)
    write_run(str(root / RUN_C), step_ms=10.0, gpu_gib=10.0, xla=False, seed=3)
    return root


def _compare(url: str, a: str, b: str) -> tuple[int, Any]:
    return get_json(api_url(url, "compare", [("a", a), ("b", b)]))


def _complete(body: Any) -> bool:
    """Both runs' every step interval, memory samples and val/loss loaded."""
    if not body:
        return False
    perf = body["performance"]
    speed = perf["step_time_ms"]
    return (
        all(
            speed[s] and speed[s]["intervals"] + speed[s]["warmup_intervals"] == STEPS - 1
            for s in ("a", "b")
        )
        and perf["gpu_memory_bytes"] is not None
        and perf["gpu_memory_bytes"]["a"] is not None
        and perf["gpu_memory_bytes"]["b"] is not None
        and perf["time_to_loss"] is not None
    )


@pytest.fixture(scope="module")
def tb(logdir: Path) -> Iterator[str]:
    with tensorboard_server(str(logdir), load_fast=True) as url:
        deadline = time.monotonic() + 90
        while True:
            _, runs = get_json(url + "data/plugin/ttsmon/versions")
            _, ab = _compare(url, RUN_A, RUN_B)
            _, cb = _compare(url, RUN_C, RUN_B)
            if (
                runs
                and sorted(runs["runs"]) == sorted(ALL_RUNS)
                and _complete(ab)
                and _complete(cb)
            ):
                break
            assert time.monotonic() < deadline, f"runs not loaded: {runs}"
            time.sleep(0.5)
        yield url


# -- helpers ---------------------------------------------------------------------


def _shot(target: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    target.screenshot(path=str(path))
    shutil.copy(path, f"/tmp/ttsmon-{name}.png")


def _select(tab: Tab, runs: list[str]) -> None:
    """Selects exactly `runs` in the picker, as a user does (None, then a checkbox each)."""
    frame = tab.frame
    frame.click(".picker-btn")
    frame.fill(".picker-filter", "")
    frame.click(".picker-none-btn")
    names = frame.eval_on_selector_all(".picker-row", "rows => rows.map((r) => r.dataset.run)")
    for run in runs:
        frame.locator(".picker-row input").nth(names.index(run)).check()
    frame.press(".picker-filter", "Escape")


def _wait_compared(tab: Tab, renders: int, a: str, b: str) -> dict[str, Any]:
    tab.frame.wait_for_function(
        "([n, a, b]) => { const c = window.__ttsmonCompare;"
        " return !!c && c.renders >= n && c.last.a === a && c.last.b === b; }",
        arg=[renders, a, b],
        timeout=90_000,
    )
    return cast(dict[str, Any], tab.frame.evaluate("window.__ttsmonCompare"))


def _perf_row(panel: Any, label: str) -> list[str]:
    """[label, A, B, B vs A] of the performance table's row `label`."""
    rows = panel.locator(".cmp-perf-table tbody tr").evaluate_all(
        "rs => rs.map((r) => [...r.children].map((c) => c.textContent))"
    )
    found = [r for r in rows if r[0] == label]
    assert len(found) == 1, (label, rows)
    return cast(list[str], found[0])


def _no_injected_markup(tab: Tab, dialogs: list[str]) -> None:
    """No <img> in the tab, and no alert() ran (the hostile name's onerror)."""
    assert tab.frame.locator("img").count() == 0
    assert dialogs == []


# -- the tests -------------------------------------------------------------------


def test_two_selected_runs_are_compared_as_the_route_says(
    browser: Any, tb: str, tmp_path: Path
) -> None:
    _, ab = _compare(tb, RUN_A, RUN_B)
    _, ba = _compare(tb, RUN_B, RUN_A)
    assert ab["differ"] is True and ab["performance"]["step_time_ms"]["speedup"] > 1.15

    tab = Tab(browser, tb)
    try:
        frame, page = tab.frame, tab.page
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        panel = frame.locator('section[data-section="compare"]')
        # All three runs selected (the default): the panel only says how to compare.
        assert panel.is_visible()
        assert panel.locator(".cmp-hint").inner_text() == "Select exactly two runs to compare them"
        assert panel.locator(".cmp-content").is_hidden()
        assert panel.locator(".cmp-swap").is_hidden()
        # Placed above the alerts and the chart sections.
        order = frame.eval_on_selector(
            ".sections",
            "s => [...s.children].filter((c) => !c.hidden).map((c) => c.dataset.section)",
        )
        assert order.index("compare") < order.index("alerts") < order.index("system"), order

        # Exactly two: A is the first in the picker's order, B the second.
        _select(tab, [RUN_B, RUN_A])
        stats = _wait_compared(tab, 1, RUN_A, RUN_B)
        assert stats["last"]["verdict"] == ab["verdict"]
        assert panel.locator(".cmp-hint").is_hidden()

        # The verdict, word for word, in the "B is faster" colour.
        verdict = panel.locator(".cmp-verdict")
        assert verdict.inner_text() == ab["verdict"]
        assert verdict.get_attribute("data-tone") == "better"
        assert RUN_A in ab["verdict"]  # the hostile name, shown as text

        # The B/A speed label and its interval graphic.
        speed = ab["performance"]["step_time_ms"]
        lo, hi = speed["ci"]
        label = panel.locator(".cmp-ci-label").inner_text()
        assert label == f"B/A speed {speed['speedup']:.2f}× (95 % CI {lo:.2f}–{hi:.2f})"
        assert panel.locator(".cmp-ci-plot").get_attribute("aria-label") == label
        geo = panel.locator(".cmp-ci-plot").evaluate(
            "p => { const x = (s) => { const r = p.querySelector(s).getBoundingClientRect();"
            " return [r.left, r.right]; };"
            " return { one: x('.cmp-ci-one'), bar: x('.cmp-ci-bar'), dot: x('.cmp-ci-dot') }; }"
        )
        one_x = geo["one"][0]
        dot_x = (geo["dot"][0] + geo["dot"][1]) / 2
        # B is faster: the whole interval lies right of 1.0, the estimate within it.
        assert one_x < geo["bar"][0] <= dot_x <= geo["bar"][1]
        # Each run's median time per step and steps/s.
        side_a = panel.locator('.cmp-side[data-side="a"]').inner_text()
        assert "per step" in side_a and "steps/s" in side_a

        # Setup differences: XLA off (A) → on (B), nothing else.
        setup = panel.locator(".cmp-setup tbody tr").evaluate_all(
            "rs => rs.map((r) => [...r.children].map((c) => c.textContent))"
        )
        assert setup == [["amharic_tts: XLA (jit_compile)", "off", "on"]]

        # The performance table: GPU memory 20 % less at its peak, in green.
        gpu_peak = _perf_row(panel, "GPU memory, peak")
        assert gpu_peak[3] == "−20 %", gpu_peak
        assert gpu_peak[1] == "10 GiB" and gpu_peak[2] == "8 GiB", gpu_peak
        change = panel.locator('.cmp-perf-table tr[data-row="gpu-memory-peak"] .cmp-change')
        assert change.get_attribute("data-tone") == "better"
        step = _perf_row(panel, "Time per step, median")
        assert step[3].startswith("−"), step
        tone = panel.locator('.cmp-perf-table tr[data-row="step-median"] .cmp-change')
        assert tone.get_attribute("data-tone") == "better"
        steps_per_s = panel.locator('.cmp-perf-table tr[data-row="steps-per-s"] .cmp-change')
        assert steps_per_s.get_attribute("data-tone") == "better"
        assert steps_per_s.inner_text().startswith("+")
        rows = panel.locator(".cmp-perf-table tbody tr").evaluate_all(
            "rs => rs.map((r) => r.dataset.row)"
        )
        # No inference data: those rows are left out.
        assert rows == [
            "step-median",
            "step-p90",
            "step-mean",
            "warmup",
            "steps-per-s",
            "steps-timed",
            "gpu-memory-peak",
            "gpu-memory-median",
            "host-memory-peak",
            "host-memory-median",
            "gpu-utilization",
            "time-to-loss",
        ]
        ttl = _perf_row(panel, panel.locator('tr[data-row="time-to-loss"] th').inner_text())
        assert ttl[0].startswith("Time to val/loss") and ttl[3].startswith("−"), ttl

        # The hostile name is text everywhere it is shown.
        names = panel.locator(".cmp-head .cmp-run-name").evaluate_all(
            "ns => ns.map((n) => n.textContent)"
        )
        assert names == [RUN_A, RUN_B]
        _no_injected_markup(tab, dialogs)

        page.set_viewport_size({"width": 1440, "height": 1600})
        _shot(panel, tmp_path, "compare")
        tab.screenshot("/tmp/ttsmon-compare-page.png")

        # Swap A/B: the route's answer the other way round, the ratio about 1/1.25.
        panel.locator(".cmp-swap").click()
        stats = _wait_compared(tab, stats["renders"] + 1, RUN_B, RUN_A)
        assert verdict.inner_text() == ba["verdict"]
        assert (
            ba["verdict"].startswith(f"{RUN_A} is ")
            and "slower per step than xla-on" in (ba["verdict"])
        )
        assert verdict.get_attribute("data-tone") == "worse"
        swapped = ba["performance"]["step_time_ms"]
        assert swapped["speedup"] == pytest.approx(1 / speed["speedup"], rel=0.01)
        assert swapped["speedup"] == pytest.approx(0.8, abs=0.05)
        label = panel.locator(".cmp-ci-label").inner_text()
        assert label.startswith(f"B/A speed {swapped['speedup']:.2f}× (95 % CI")
        setup = panel.locator(".cmp-setup tbody tr").evaluate_all(
            "rs => rs.map((r) => [...r.children].map((c) => c.textContent))"
        )
        assert setup == [["amharic_tts: XLA (jit_compile)", "on", "off"]]
        gpu_peak = _perf_row(panel, "GPU memory, peak")
        assert gpu_peak[3] == "+25 %" and gpu_peak[1] == "8 GiB", gpu_peak
        tone = panel.locator('.cmp-perf-table tr[data-row="gpu-memory-peak"] .cmp-change')
        assert tone.get_attribute("data-tone") == "worse"

        # Narrow: everything inside the panel's width.
        page.set_viewport_size({"width": 560, "height": 1600})
        frame.wait_for_function(
            "document.querySelector('section[data-section=\"compare\"]').clientWidth < 560"
        )
        overflow = panel.evaluate(
            "p => [...p.querySelectorAll('.cmp-content, .cmp-block, .cmp-verdict, .cmp-ci')]"
            ".filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.className)"
        )
        assert overflow == []
        _shot(panel, tmp_path, "compare-narrow")
        page.set_viewport_size({"width": 1440, "height": 2600})

        # A third run: no comparison, the hint again.
        frame.click(".picker-btn")
        names = frame.eval_on_selector_all(".picker-row", "rows => rows.map((r) => r.dataset.run)")
        frame.locator(".picker-row input").nth(names.index(RUN_C)).check()
        frame.press(".picker-filter", "Escape")
        hint = panel.locator(".cmp-hint")
        hint.wait_for(state="visible")
        assert panel.locator(".cmp-content").is_hidden()
        assert panel.locator(".cmp-swap").is_hidden()
        _no_injected_markup(tab, dialogs)
        assert tab.errors == []
    finally:
        tab.close()


def test_dark_mode_and_a_pair_that_does_not_differ(browser: Any, tb: str, tmp_path: Path) -> None:
    _, ca = _compare(tb, RUN_A, RUN_C)
    assert ca["differ"] is False

    tab = Tab(browser, tb, dark=True)
    try:
        frame = tab.frame
        dialogs: list[str] = []
        tab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        assert frame.evaluate("document.documentElement.classList.contains('dark')")
        panel = frame.locator('section[data-section="compare"]')
        _select(tab, [RUN_A, RUN_B])
        _wait_compared(tab, 1, RUN_A, RUN_B)
        tab.page.set_viewport_size({"width": 1440, "height": 1600})
        _shot(panel, tmp_path, "compare-dark")
        # Text on the dark card, not the light theme's dark grey.
        color = panel.locator(".cmp-verdict").evaluate("e => getComputedStyle(e).color")
        assert color == "rgb(232, 234, 237)", color

        # Two runs of the same speed: a neutral verdict, the interval across 1.0.
        _select(tab, [RUN_A, RUN_C])
        _wait_compared(tab, 1, RUN_A, RUN_C)
        verdict = panel.locator(".cmp-verdict")
        assert verdict.inner_text() == ca["verdict"]
        assert verdict.get_attribute("data-tone") == "neutral"
        assert panel.locator(".cmp-same").inner_text() == "No recorded difference"
        geo = panel.locator(".cmp-ci-plot").evaluate(
            "p => { const x = (s) => { const r = p.querySelector(s).getBoundingClientRect();"
            " return [r.left, r.right]; };"
            " return { one: x('.cmp-ci-one'), bar: x('.cmp-ci-bar') }; }"
        )
        assert geo["bar"][0] <= geo["one"][0] <= geo["bar"][1]
        _no_injected_markup(tab, dialogs)
        assert tab.errors == []
    finally:
        tab.close()


def test_an_unknown_run_and_a_bad_request_are_readable_error_lines(browser: Any, tb: str) -> None:
    """The server's 404 and 400 texts, as text, where the comparison would be."""
    answer = {"status": 404, "body": "Not found: run '<b>gone</b> ሙከራ' has no ttsmon data"}
    tab = Tab(browser, tb)
    try:
        frame = tab.frame
        dialogs: list[str] = []
        tab.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        tab.context.route(
            re.compile(r"/data/plugin/ttsmon/compare\?"),
            lambda route: route.fulfill(
                status=answer["status"], content_type="text/plain", body=answer["body"]
            ),
        )
        panel = frame.locator('section[data-section="compare"]')
        _select(tab, [RUN_A, RUN_B])
        error = panel.locator(".cmp-error")
        error.wait_for(state="visible")
        assert error.inner_text() == "run '<b>gone</b> ሙከራ' has no ttsmon data"
        assert error.locator("b").count() == 0
        assert panel.locator(".cmp-content").is_hidden()
        assert frame.evaluate("window.__ttsmonCompare === undefined")

        answer.update(status=400, body="missing query parameter 'a' or 'b' (a run each)")
        panel.locator(".cmp-swap").click()
        frame.wait_for_function(
            "() => document.querySelector('.cmp-error').textContent.startsWith('missing')"
        )
        assert error.inner_text() == "missing query parameter 'a' or 'b' (a run each)"
        _no_injected_markup(tab, dialogs)
        # Only the browser's own line for each failed request.
        assert tab.errors, "the failed requests"
        assert all(e.startswith("Failed to load resource") for e in tab.errors), tab.errors
    finally:
        tab.close()
