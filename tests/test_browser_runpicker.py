"""End to end: a team's log directory of 200 runs, and a model with 300 gradient series.

The runs are tiny (run facts and one CPU sample each, written with the
recorder's event writer) in two experiment folders, ``expA/`` and ``expB/``,
recorded on two hosts; one run's name holds markup characters. One more run
logs 300 per-layer gradient norms (IndexTTS2's GPT has hundreds of parameter
tensors). A real TensorBoard serves them and Chromium shows the tab; the tests
use the run picker as a user does (filter box, grouping, All / None, a
group's checkbox, the remembered selection) and read the gradient chart as a
user does (its top 10 lines, the subtitle, the heatmap and its hover).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browserkit import SKIPS, Tab, get_json
from tbserver import tensorboard_server

from tb_plugin_ttsmon import metadata

pytestmark = SKIPS

TINY_RUNS = 200
HOSTS = ("node-a", "node-b")
MARKUP_RUN = "expA/<b>odd & run"
GRAD_RUN = "expB/gpt-300-layers"
LAYERS = 300
GRAD_STEPS = 20
DEFAULT_SELECTED = 5
CORES = 16


def _tiny_name(i: int) -> str:
    return f"{'expA' if i < 120 else 'expB'}/run-{i:03d}"


def _core_busy(core: int, step: int) -> int:
    return (5 * core + step) % 100


def _norm(layer: int, step: int) -> float:
    return (layer + 1) * (1.0 + 0.01 * step)


def _write_run(
    run_dir: Path,
    host: str,
    wall_s: float,
    scalars_by_step: dict[int, dict[str, float]] | None = None,
) -> None:
    from tb_plugin_ttsmon.recorder import writers

    w = writers.EventFileSummaryWriter(str(run_dir))
    try:
        facts = {"hostname": host, "pid": 100, "started_at_s": wall_s - 1}
        w.write(metadata.sample_step(wall_s - 1), {}, {metadata.RUN_FACTS_TAG: facts}, wall_s - 1)
        w.write(metadata.sample_step(wall_s), {"system/cpu_percent": 10.0}, wall_time_s=wall_s)
        for step, scalars in (scalars_by_step or {}).items():
            w.write(step, scalars, wall_time_s=wall_s - 30 + step)
            if scalars:  # a 16-core host's per-core CPU alongside
                cores = {
                    f"system/cpu_core/{i}/utilization_percent": float(_core_busy(i, step))
                    for i in range(CORES)
                }
                sample_wall = wall_s - 30 + step + 0.5
                w.write(metadata.sample_step(sample_wall), cores, wall_time_s=sample_wall)
    finally:
        w.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("team")
    base = time.time() - 3600
    for i in range(TINY_RUNS):
        # Later runs have newer data: the default selection is the newest ones.
        _write_run(root / _tiny_name(i), HOSTS[i % 2], base + 10 * i)
    _write_run(root / MARKUP_RUN, HOSTS[0], base - 100)
    grads = {
        step: {
            "train/loss": 1.0 / step,
            **{f"gradients/layer_{j}/norm": _norm(j, step) for j in range(LAYERS)},
        }
        for step in range(1, GRAD_STEPS + 1)
    }
    _write_run(root / GRAD_RUN, HOSTS[1], base + 10 * TINY_RUNS, grads)
    return root


ALL_RUNS = TINY_RUNS + 2
NEWEST = [GRAD_RUN] + [
    _tiny_name(i) for i in range(TINY_RUNS - 1, TINY_RUNS - DEFAULT_SELECTED, -1)
]


@pytest.fixture(scope="module")
def tb_url(logdir: Path) -> Iterator[str]:
    with tensorboard_server(str(logdir), load_fast=True) as url:
        deadline = time.monotonic() + 60
        while True:
            _, body = get_json(url + "data/plugin/ttsmon/versions")
            if body and len(body["runs"]) == ALL_RUNS:
                break
            assert time.monotonic() < deadline, (
                f"runs not loaded: {len((body or {}).get('runs', {}))}"
            )
            time.sleep(0.5)
        yield url


def _selected(tab: Tab) -> int:
    count = tab.frame.locator(".picker-count").text_content() or ""
    shown, total = count.split("/")
    assert int(total) == ALL_RUNS
    return int(shown)


def _visible_rows(tab: Tab) -> list[str]:
    return tab.frame.eval_on_selector_all(
        ".picker-list .picker-row", "rows => rows.map((r) => r.dataset.run)"
    )


def _checked_rows(tab: Tab) -> set[str]:
    return set(
        tab.frame.eval_on_selector_all(
            ".picker-list .picker-row",
            "rows => rows.filter((r) => r.querySelector('input').checked)"
            ".map((r) => r.dataset.run)",
        )
    )


def test_run_picker_filters_groups_and_selects_among_200_runs(
    browser: Any, tb_url: str, tmp_path: Path
) -> None:
    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        # Default: the runs with the newest data.
        assert _selected(tab) == DEFAULT_SELECTED
        chips = frame.eval_on_selector_all(
            ".run-chip[data-run]", "cs => cs.map((c) => c.dataset.run)"
        )
        assert sorted(chips) == sorted(NEWEST)

        frame.click(".picker-btn")
        # Grouped by experiment folder: a header per folder with its selected/total count.
        groups = frame.eval_on_selector_all(
            ".picker-group",
            "gs => gs.map((g) => [g.dataset.group,"
            " g.querySelector('.picker-group-count').textContent])",
        )
        assert groups == [["expA", "0/121"], ["expB", f"{DEFAULT_SELECTED}/81"]]
        assert len(_visible_rows(tab)) == ALL_RUNS
        # The odd name is text, not markup.
        row = frame.locator(".picker-row", has_text="<b>odd & run")
        assert row.count() == 1 and row.locator("b").count() == 0
        tab.screenshot(tmp_path / "picker.png")
        tab.screenshot("/tmp/ttsmon-runpicker.png")

        # The filter is a case-insensitive substring.
        frame.fill(".picker-filter", "EXPB/RUN-15")
        rows = _visible_rows(tab)
        assert rows == [f"expB/run-{i}" for i in range(150, 160)]
        # All and None act on what the filter shows only.
        frame.click(".picker-all")
        assert _selected(tab) == DEFAULT_SELECTED + 10
        assert _checked_rows(tab) == set(rows)
        frame.click(".picker-none-btn")
        assert _selected(tab) == DEFAULT_SELECTED

        # Grouped by host: a group's checkbox takes all of its (shown) runs.
        frame.fill(".picker-filter", "")
        frame.select_option(".picker-group-by", "host")
        groups = frame.eval_on_selector_all(".picker-group", "gs => gs.map((g) => g.dataset.group)")
        assert groups == list(HOSTS)
        frame.fill(".picker-filter", "expA/run-00")
        frame.locator('.picker-group[data-group="node-a"] input').check()
        assert _checked_rows(tab) == {f"expA/run-00{i}" for i in (0, 2, 4, 6, 8)}
        assert _selected(tab) == DEFAULT_SELECTED + 5
        chosen = set(
            frame.eval_on_selector_all(".run-chip[data-run]", "cs => cs.map((c) => c.dataset.run)")
        )
        assert len(chosen) == 6  # six chips, the rest is "+4 more"
        assert frame.locator(".run-chip-more").text_content() == "+4 more"

        # The selection is remembered across a reload.
        frame.press(".picker-filter", "Escape")
        tab.page.reload()
        frame = tab.page.wait_for_selector(
            'iframe[src*="plugin_entry.html?name=ttsmon"]'
        ).content_frame()
        assert frame is not None
        tab.frame = frame
        frame.wait_for_function(
            "document.body && document.body.dataset.rendered === '1'", timeout=60_000
        )
        assert _selected(tab) == DEFAULT_SELECTED + 5
        assert tab.errors == []
    finally:
        tab.close()


def test_300_gradient_series_are_drawn_as_top_10_lines_and_a_heatmap(
    browser: Any, tb_url: str, tmp_path: Path
) -> None:
    tab = Tab(browser, tb_url)
    try:
        frame = tab.frame
        # (data-chart is "gradient-layers\\0<run>": a NUL that CSS selectors cannot name)
        card = frame.locator('.chart-card[data-chart^="gradient-layers"]', has_text=GRAD_RUN)
        card.locator(".many-heatmap-canvas").wait_for()
        card.scroll_into_view_if_needed()
        # The lines: the 10 layers with the largest latest norm, largest first.
        labels = card.locator(".u-legend .u-series .u-label").all_text_contents()[1:]
        assert labels == [f"layer_{j}" for j in range(LAYERS - 1, LAYERS - 11, -1)]
        subtitle = card.locator(".chart-subtitle").text_content() or ""
        assert "top 10 of 300 layers" in subtitle
        # The heatmap: one row per layer; hovering names layer, x and value.
        canvas = card.locator(".many-heatmap-canvas")
        box = canvas.bounding_box()
        assert box is not None and box["height"] >= 60
        layer = 123
        tab.page.mouse.move(
            box["x"] + box["width"] - 2, box["y"] + (layer + 0.5) / LAYERS * box["height"]
        )
        tip = card.locator(".many-heatmap-tip")
        tip.wait_for()
        text = tip.inner_text()
        assert text.splitlines()[0] == f"layer_{layer}", text
        value = float(text.splitlines()[-1].replace(",", ""))
        assert value == pytest.approx(_norm(layer, GRAD_STEPS), rel=1e-3)
        assert (card.locator(".many-heatmap-legend").text_content() or "").startswith(
            "All 300 layers"
        )
        # The same for a host with more cores than lines: the busiest 10 cores.
        cores = frame.locator('.chart-card[data-chart^="cpu-cores"]', has_text=GRAD_RUN)
        cores.locator(".many-heatmap-canvas").wait_for()
        assert "top 10 of 16 cores" in (cores.locator(".chart-subtitle").text_content() or "")
        busiest = sorted(range(CORES), key=lambda i: -_core_busy(i, GRAD_STEPS))[:10]
        labels = cores.locator(".u-legend .u-series .u-label").all_text_contents()[1:]
        assert labels == [f"core {i}" for i in busiest]
        legend = cores.locator(".many-heatmap-legend").text_content() or ""
        assert legend.startswith("All 16 cores") and "0 to 100 %" in legend
        card.screenshot(path=str(tmp_path / "gradients.png"))
        card.screenshot(path="/tmp/ttsmon-gradients-300.png")
        assert tab.errors == []
    finally:
        tab.close()
