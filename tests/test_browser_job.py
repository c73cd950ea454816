"""End to end: the Job view and the run picker's job grouping (issue 11).

A synthetic torchrun job of 64 ranks (8 nodes x 8 GPUs, `jobdata.write_job`)
with a straggler, a stalled rank and a rank that holds far more GPU memory
than the rest is served by a real TensorBoard, and Chromium shows the tab.
The tests read what a user reads: the picker grouped by job ("64 ranks on 8
nodes", ranks in order, one click selects the job), the Job panel (its
header, findings naming the right ranks, every metric row with its worst
rank, the heatmap's rows, colours and hover, the band charts, the per-node
GPU small multiples) and compare it with what the `JobSpec` planted.

A second case starts from a log directory without any job (the panel is
hidden, the picker groups by folder) and adds a 2-rank job while the tab is
open: the panel appears and the picker groups by job, the loose run under
"(not in a job)".

Screenshots (heatmap and band, light; heatmap, dark) land in each test's
``tmp_path`` and are copied to ``/tmp/ttsmon-job-view-*.png``. The render
time is printed, never asserted (shared, noisy machines).
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jobdata
import pytest
from browserkit import SKIPS, Tab, api_url, get_json
from jobdata import JobSpec
from tbserver import tensorboard_server

from tb_plugin_ttsmon import catalogue

pytestmark = SKIPS

SPEC = JobSpec(
    folder="exp1",
    job="torchrun-5c1f0e2a",
    nodes=8,
    ranks_per_node=8,
    straggler_rank=17,
    stalled_rank=42,
    heavy_memory_rank=53,
)
SMALL = JobSpec(folder="exp2", job="slurm-4242.0", nodes=1, ranks_per_node=2)
LOOSE_RUN = "solo/laptop"
GIB = 1024**3


# -- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def job_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job64")
    jobdata.write_job(root, SPEC)
    return root


def _wait_for_runs(url: str, count: int) -> None:
    deadline = time.monotonic() + 90
    while True:
        _, body = get_json(url + "data/plugin/ttsmon/versions")
        if body and len(body["runs"]) == count:
            return
        assert time.monotonic() < deadline, f"runs not loaded: {len((body or {}).get('runs', {}))}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def job_tb(job_logdir: Path) -> Iterator[str]:
    with tensorboard_server(str(job_logdir), load_fast=True) as url:
        _wait_for_runs(url, SPEC.world_size)
        yield url


# -- helpers ---------------------------------------------------------------------


def _wait_rendered(tab: Tab, renders: int = 1) -> dict[str, Any]:
    tab.frame.wait_for_function(
        f"Number(document.body.dataset.jobRendered || 0) >= {renders}", timeout=90_000
    )
    return cast(dict[str, Any], tab.frame.evaluate("window.__ttsmonJob"))


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("−", "-"))


WORST_RE = re.compile(r"worst rank (\d+) \((.+)\): ([−\d.,]+) (\S+), job median ([−\d.,]+) (\S+)$")


def _worst(job: Any, metric: str) -> tuple[int, str, float, float, str]:
    """(rank, run, value, job median, unit) from a metric row's "worst rank" text."""
    worst = job.locator(f'.job-metric[data-metric="{metric}"] .job-worst')
    text = worst.inner_text().strip()
    m = WORST_RE.match(text)
    assert m, text
    assert worst.get_attribute("data-rank") == m.group(1)
    return int(m.group(1)), m.group(2), _number(m.group(3)), _number(m.group(5)), m.group(4)


def _pixel(canvas: Any, x_frac: float, row: int, rows: int) -> list[int]:
    """The RGB the heatmap canvas shows in `row` at `x_frac` of its width."""
    return cast(
        list[int],
        canvas.evaluate(
            """(c, [fx, row, rows]) => {
                const x = Math.floor(c.width * fx);
                const y = Math.floor((row + 0.5) * c.height / rows);
                return [...c.getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3)];
            }""",
            [x_frac, row, rows],
        ),
    )


def _shot(target: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    target.screenshot(path=str(path))
    shutil.copy(path, f"/tmp/ttsmon-job-view-{name}.png")


# -- the 64-rank job -------------------------------------------------------------


def test_job_view_of_a_64_rank_job(browser: Any, job_tb: str, tmp_path: Path) -> None:
    tab = Tab(browser, job_tb)
    try:
        frame, page = tab.frame, tab.page
        # Tall enough for the whole Job panel in one screenshot.
        page.set_viewport_size({"width": 1440, "height": 4800})
        stats = _wait_rendered(tab)
        job = frame.locator('section[data-section="job"]')
        assert job.is_visible()
        # It is the first section, above the alerts.
        first = frame.eval_on_selector(".sections", "s => s.firstElementChild.dataset.section")
        assert first == "job"

        # The header: which job, where, how big.
        head = job.locator(".job-head").inner_text()
        assert SPEC.job in head and SPEC.folder in head
        assert "64 ranks on 8 nodes" in head
        assert re.search(r"\d+ buckets of ", head), head

        # Findings name the planted ranks.
        for finding, rank in (
            ("straggler", SPEC.straggler_rank),
            ("stalled_rank", SPEC.stalled_rank),
            ("uneven_gpu_memory", SPEC.heavy_memory_rank),
        ):
            assert rank is not None
            row = job.locator(f'.job-finding[data-finding="{finding}"]')
            assert row.count() == 1, finding
            assert row.get_attribute("data-rank") == str(rank)
            assert row.get_attribute("data-run") == SPEC.run(rank)
            assert f"rank {rank}" in row.inner_text()

        # Every job metric of the catalogue (the job logs them all), in its order.
        cat = catalogue.load()
        expected = [(m.id, m.title) for m in cat.job_metrics]
        shown = job.locator(".job-metric").evaluate_all(
            "rs => rs.map((r) => [r.dataset.metric,"
            " r.querySelector('.job-metric-title').textContent])"
        )
        assert [tuple(x) for x in shown] == expected
        titles = {m.id: m.description for m in cat.job_metrics}
        for mid, description in titles.items():
            title = job.locator(f'.job-metric[data-metric="{mid}"] .job-metric-title')
            assert title.get_attribute("title") == description

        # The worst ranks: the straggler between steps, the heavy rank's GPU
        # memory, the largest process (rss grows with the rank).
        assert SPEC.straggler_rank is not None and SPEC.heavy_memory_rank is not None
        rank, run, value, median, unit = _worst(job, "data-time")
        assert (rank, run, unit) == (SPEC.straggler_rank, SPEC.run(rank), "ms")
        assert value == pytest.approx(SPEC.straggler_data_ms, abs=0.2)
        assert median == pytest.approx(SPEC.fast_data_ms, abs=0.2)
        rank, run, value, median, unit = _worst(job, "rank-gpu-memory")
        assert (rank, run, unit) == (SPEC.heavy_memory_rank, SPEC.run(rank), "GiB")
        assert value == pytest.approx(62.0, abs=0.1)
        rank, run, *_ = _worst(job, "process-rss")
        assert (rank, run) == (SPEC.world_size - 1, SPEC.run(SPEC.world_size - 1))

        # Heatmaps: one canvas per metric, a row per rank, 4-6 px each.
        frame.locator('.job-mode .seg-btn[data-mode="heatmap"]').click()
        canvases = job.locator(".job-hm-canvas")
        assert canvases.count() == len(expected)
        data_time = job.locator('.job-metric[data-metric="data-time"]')
        canvas = data_time.locator(".job-hm-canvas")
        box = canvas.bounding_box()
        assert box is not None
        rows = SPEC.world_size
        row_px = box["height"] / rows
        assert 4 <= row_px <= 6, row_px
        # Rank labels never overlap; the worst rank's is there, highlighted.
        labels = data_time.locator(".job-hm-label")
        boxes = sorted(
            (b["y"], b["y"] + b["height"])
            for b in (labels.nth(i).bounding_box() for i in range(labels.count()))
            if b
        )
        assert len(boxes) >= 8
        assert all(b[0] >= a[1] - 0.5 for a, b in itertools.pairwise(boxes)), boxes
        assert (
            data_time.locator(".job-hm-label.worst").inner_text() == f"rank {SPEC.straggler_rank}"
        )
        # Colour: the straggler's row is the bright end of viridis, a healthy rank's the dark end.
        bright = _pixel(canvas, 0.25, SPEC.straggler_rank, rows)
        dark = _pixel(canvas, 0.25, 0, rows)
        assert sum(bright) > sum(dark) + 200, (bright, dark)
        # The stalled rank's row is empty after it stopped (the card's colour).
        step_time = job.locator('.job-metric[data-metric="step-time"] .job-hm-canvas')
        assert SPEC.stalled_rank is not None
        late = _pixel(step_time, 0.95, SPEC.stalled_rank, rows)
        alive = _pixel(step_time, 0.95, SPEC.stalled_rank + 1, rows)
        assert late == [255, 255, 255] and alive != [255, 255, 255], (late, alive)
        # Hover names the rank under the cursor, its run, host and value.
        canvas.hover(position={"x": box["width"] * 0.25, "y": (SPEC.straggler_rank + 0.5) * row_px})
        tip = data_time.locator(".job-hm-tip")
        tip.wait_for()
        lines = tip.inner_text().splitlines()
        assert lines[0] == f"rank {SPEC.straggler_rank} on {SPEC.host(SPEC.straggler_rank // 8)}"
        assert lines[1] == SPEC.run(SPEC.straggler_rank)
        m = re.match(r"Time between steps: ([\d.,]+) ms", lines[-1])
        assert m, lines
        assert _number(m.group(1)) == pytest.approx(SPEC.straggler_data_ms, abs=0.2)
        page.mouse.move(0, 0)

        # Per-node GPU small multiples: 8 nodes, 8 GPUs each, for each GPU metric.
        for gm in cat.job_gpu_metrics:
            cards = job.locator(f'.job-node-grid[data-gpu-metric="{gm.id}"] .job-node-card')
            assert cards.count() == SPEC.nodes, gm.id
            for node in range(SPEC.nodes):
                card = cards.nth(node)
                sampler = node * SPEC.ranks_per_node
                title = card.locator(".job-node-title").inner_text()
                assert title == f"{SPEC.host(node)} (rank {sampler} samples it)"
                legend = card.locator(".u-legend .u-series .u-label").all_inner_texts()[1:]
                assert legend == [
                    f"GPU {g} · rank {sampler + g}" for g in range(SPEC.ranks_per_node)
                ]
        # The heavy rank's GPU: its latest memory in its node's legend.
        heavy = SPEC.heavy_memory_rank
        heavy_card = job.locator('.job-node-grid[data-gpu-metric="gpu-memory"] .job-node-card').nth(
            heavy // SPEC.ranks_per_node
        )
        values = heavy_card.locator(".u-legend .u-series .u-value").all_inner_texts()[1:]
        assert values[heavy % SPEC.ranks_per_node] == "62.5 GiB", values
        assert all(
            v.endswith("GiB") and _number(v.split()[0]) < 32
            for i, v in enumerate(values)
            if i != heavy % 8
        ), values

        stats = _wait_rendered(tab)
        print(
            f"\njob view, 64 ranks x 8 GPUs: render {stats['lastRenderMs']:.0f} ms"
            f" (answer parsed -> drawn), load {stats['lastLoadMs']:.0f} ms (request -> drawn)"
        )
        _shot(job, tmp_path, "heatmap")

        # Band mode: a chart per metric with the band, the median and the worst rank's line.
        frame.locator('.job-mode .seg-btn[data-mode="band"]').click()
        assert job.locator(".job-hm").count() == 0
        assert job.locator(".job-band .uplot").count() == len(expected)
        legend = data_time.locator(".u-legend .u-series .u-label").all_inner_texts()
        assert legend[1:] == [
            f"max of {SPEC.world_size} ranks",
            "min",
            "median",
            f"rank {SPEC.straggler_rank} (worst)",
        ]
        assert frame.evaluate("localStorage.getItem('ttsmon.jobMode')") == '"band"'
        _shot(job, tmp_path, "band")

        # Dark mode (TensorBoard's setting), the heatmaps again.
        frame.locator('.job-mode .seg-btn[data-mode="heatmap"]').click()
        page.evaluate("document.body.classList.add('dark-mode')")
        frame.wait_for_function("document.documentElement.classList.contains('dark')")
        _shot(job, tmp_path, "dark")
        page.evaluate("document.body.classList.remove('dark-mode')")

        # The picker groups by job (no stored choice, runs in a job): ranks in
        # order, the job said once, one click selects all 64.
        frame.click(".picker-btn")
        assert frame.locator(".picker-group-by").input_value() == "job"
        group = frame.locator(f'.picker-group[data-job="{SPEC.job}"]')
        assert group.locator(".picker-group-name").inner_text() == (
            f"{SPEC.folder} · {SPEC.job} — 64 ranks on 8 nodes"
        )
        rows = frame.locator(".picker-row")
        assert rows.evaluate_all("rs => rs.map((r) => r.dataset.run)") == [
            SPEC.run(k) for k in range(SPEC.world_size)
        ]
        assert rows.nth(SPEC.straggler_rank).locator(".run-rank").inner_text() == (
            f"rank {SPEC.straggler_rank}"
        )
        group.locator("input").check()
        assert frame.locator(".picker-count").inner_text() == "64/64"
        checked = rows.evaluate_all(
            "rs => rs.filter((r) => r.querySelector('input').checked).length"
        )
        assert checked == SPEC.world_size
        frame.press(".picker-filter", "Escape")
        assert tab.errors == []
    finally:
        tab.close()


# -- no job, then a small one ------------------------------------------------------


def _write_loose_run(root: Path) -> None:
    """A run of no job: facts without `job`, one sample."""
    from tb_plugin_ttsmon import metadata
    from tb_plugin_ttsmon.recorder import writers

    wall = SMALL.start_wall_s
    w = writers.EventFileSummaryWriter(str(root / LOOSE_RUN))
    try:
        facts = {"hostname": "laptop", "pid": 7, "started_at_s": wall - 1}
        w.write(metadata.sample_step(wall - 1), {}, {metadata.RUN_FACTS_TAG: facts}, wall - 1)
        w.write(metadata.sample_step(wall), {"system/cpu_percent": 12.0}, wall_time_s=wall)
    finally:
        w.close()


def _picker_groups(tab: Tab) -> list[tuple[str, list[str]]]:
    """(header, run names) of each group of the open picker, in order."""
    return [
        (g[0], g[1])
        for g in tab.frame.eval_on_selector(
            ".picker-list",
            """list => {
                const out = [];
                for (const n of list.children) {
                    if (n.classList.contains('picker-group'))
                        out.push([n.querySelector('.picker-group-name').textContent, []]);
                    else if (n.classList.contains('picker-row')) out.at(-1)[1].push(n.dataset.run);
                }
                return out;
            }""",
        )
    ]


def test_job_panel_appears_with_a_job_and_loose_runs_are_not_in_a_job(
    browser: Any, tmp_path: Path
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    _write_loose_run(root)
    with tensorboard_server(str(root), load_fast=True) as url:
        _wait_for_runs(url, 1)
        tab = Tab(browser, url)
        try:
            frame = tab.frame
            job = frame.locator('section[data-section="job"]')
            # No run of a job: no Job panel, the picker groups by folder.
            assert job.is_hidden()
            frame.click(".picker-btn")
            assert frame.locator(".picker-group-by").input_value() == "folder"
            assert _picker_groups(tab) == [("solo", [LOOSE_RUN])]
            frame.press(".picker-filter", "Escape")

            # A 2-rank job starts writing while the tab is open.
            jobdata.write_job(root, SMALL)
            _wait_for_runs(url, 3)
            frame.wait_for_function(
                "document.querySelector('.picker-count').textContent.endsWith('/3')",
                timeout=60_000,
            )
            _wait_rendered(tab)
            assert job.is_visible()
            head = job.locator(".job-head").inner_text()
            assert SMALL.job in head and "2 ranks on 1 node" in head
            # One job: nothing to choose.
            assert job.locator(".job-select").is_hidden()
            # Rank 1's processes hold 0.2 GiB more GPU memory than rank 0's: the
            # worst, but within 2 % of the median, so named without blame.
            memory = [jobdata._rank_memory_bytes(SMALL, r) / GIB for r in range(2)]
            heavier = max(range(2), key=lambda r: memory[r])
            worst = job.locator('.job-metric[data-metric="rank-gpu-memory"] .job-worst')
            m = re.fullmatch(
                r"no rank stands out \(rank (\d+): ([\d.]+) GiB, job median ([\d.]+) GiB\)",
                worst.inner_text().strip(),
            )
            assert m, worst.inner_text()
            assert int(m.group(1)) == heavier
            assert float(m.group(2)) == pytest.approx(memory[heavier], abs=0.01)
            assert float(m.group(3)) == pytest.approx(statistics.median(memory), abs=0.01)
            assert worst.get_attribute("data-rank") is None
            assert job.locator(".job-hm-canvas").count() == job.locator(".job-metric").count()
            cards = job.locator('.job-node-grid[data-gpu-metric="gpu-util"] .job-node-card')
            assert cards.count() == 1
            assert cards.locator(".u-legend .u-series .u-label").all_inner_texts()[1:] == [
                "GPU 0 · rank 0",
                "GPU 1 · rank 1",
            ]

            # The picker now groups by job; the loose run is "(not in a job)", last.
            frame.click(".picker-btn")
            assert frame.locator(".picker-group-by").input_value() == "job"
            assert _picker_groups(tab) == [
                (
                    f"{SMALL.folder} · {SMALL.job} — 2 ranks on 1 node",
                    [SMALL.run(0), SMALL.run(1)],
                ),
                ("(not in a job)", [LOOSE_RUN]),
            ]
            # A choice the user made wins over the default, also after a reload.
            frame.select_option(".picker-group-by", "host")
            tab.page.reload()
            frame = tab.page.wait_for_selector(
                'iframe[src*="plugin_entry.html?name=ttsmon"]'
            ).content_frame()
            assert frame is not None
            tab.frame = frame
            frame.wait_for_function(
                "document.body && document.body.dataset.rendered === '1'", timeout=60_000
            )
            frame.click(".picker-btn")
            assert frame.locator(".picker-group-by").input_value() == "host"
            assert [g for g, _ in _picker_groups(tab)] == ["laptop", SMALL.host(0)]
            assert tab.errors == []
        finally:
            tab.close()


# -- what the panel says when the route fails or has nothing ---------------------


class _AnsweredTab(Tab):
    """A Tab whose `job` route always answers `status` with `body`."""

    def __init__(self, browser: Any, url: str, status: int, body: str, content_type: str) -> None:
        real_new_context = browser.new_context

        def new_context(**kwargs: Any) -> Any:
            context = real_new_context(**kwargs)
            context.route(
                re.compile(r"/data/plugin/ttsmon/job\?"),
                lambda route: route.fulfill(status=status, content_type=content_type, body=body),
            )
            return context

        browser.new_context = new_context
        try:
            super().__init__(browser, url)
        finally:
            browser.new_context = real_new_context


def test_job_panel_says_why_it_is_empty(browser: Any, job_tb: str) -> None:
    # The server fails: its message, readable, in the panel; no stale rows.
    message = "the analytics pool is shutting down"
    tab = _AnsweredTab(browser, job_tb, 500, message, "text/plain")
    try:
        job = tab.frame.locator('section[data-section="job"]')
        note = job.locator(".panel-note")
        note.wait_for()
        text = note.inner_text()
        assert text.startswith(f"Could not load the job view of {SPEC.folder} · {SPEC.job}: 500")
        assert message in text
        assert job.locator(".job-metric").count() == 0
        assert job.is_visible()
    finally:
        tab.close()
    # A job whose ranks have logged nothing the view draws yet.
    status, real = get_json(
        api_url(job_tb, "job", [("job", SPEC.job), ("folder", SPEC.folder), ("buckets", "50")])
    )
    assert status == 200
    empty = real | {"metrics": [], "nodes": [], "findings": []}
    tab = _AnsweredTab(browser, job_tb, 200, json.dumps(empty), "application/json")
    try:
        _wait_rendered(tab)
        job = tab.frame.locator('section[data-section="job"]')
        body = job.locator(".panel-body").inner_text()
        assert "No job metrics yet" in body
        assert "No GPU series from this job's nodes" in body
        assert "No findings: the ranks keep pace with each other." in body
        assert tab.errors == []
    finally:
        tab.close()
