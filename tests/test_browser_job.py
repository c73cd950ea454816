"""End to end: the Job view and the run picker's job grouping (issue 11).

A synthetic torchrun job of 64 ranks (8 nodes x 8 GPUs, `jobdata.write_job`)
with a straggler, a stalled rank and a rank that holds far more GPU memory
than the rest is served by a real TensorBoard, and Chromium shows the tab.
The tests read what a user reads: the picker grouped by job ("64 ranks on 8
nodes", ranks in order, one click selects the job), the Job panel (its
header, findings naming the right ranks, every metric row with its worst
rank, the heatmap's rows, colours and hover, the band charts, the per-node
GPU small multiples) and compare it with what the `JobSpec` planted.

Two sources for the `job` route:

- ``backend``: the plugin's own route;
- ``mocked``: the same TensorBoard for everything else, `job` answered by
  Playwright with the documented shape (http_api.md, "Job routes"), computed
  here from exactly the points `jobdata` writes, so the tab's side is tested
  whatever the backend's analytics say.

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
import math
import re
import shutil
import statistics
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jobdata
import numpy as np
import pytest
from browserkit import SKIPS, Tab, api_url, get_json
from jobdata import JobSpec
from tbserver import tensorboard_server

from tb_plugin_ttsmon import catalogue
from tb_plugin_ttsmon.analytics.heatmaps import nice_buckets

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
SOURCES = ["backend", "mocked"]
GIB = 1024**3


# -- what the job route answers, computed from what jobdata writes -------------


class _Recorder:
    """Stands in for the event writer: keeps every (wall time, value) per tag."""

    def __init__(self) -> None:
        self.points: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def write(
        self,
        step: int,
        scalars: Any,
        documents: Any = None,
        wall_time_s: float | None = None,
    ) -> None:
        assert wall_time_s is not None
        for tag, value in dict(scalars).items():
            self.points[tag].append((wall_time_s, float(value)))


def _written(spec: JobSpec) -> list[dict[str, list[tuple[float, float]]]]:
    """Per rank, the points `jobdata.write_job` writes for it."""
    end_s = spec.start_wall_s + spec.steps * spec.step_s + (spec.hang_for_s or 0.0)
    out = []
    for rank in range(spec.world_size):
        node, local = divmod(rank, spec.ranks_per_node)
        rec = _Recorder()
        jobdata._write_rank(cast(Any, rec), spec, rank, node, local, end_s)
        out.append(rec.points)
    return out


def _bucket_means(
    points: list[tuple[float, float]], start: float, bucket_s: float, n: int
) -> np.ndarray:
    out = np.full(n, np.nan)
    if not points:
        return out
    wall, value = np.array(points).T
    idx = np.clip(((wall - start) / bucket_s).astype(np.int64), 0, n - 1)
    counts = np.bincount(idx, minlength=n)
    sums = np.bincount(idx, weights=value, minlength=n)
    with np.errstate(invalid="ignore"):
        out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def _json_list(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else round(float(v), 6) for v in a]


def _nan_stat(rows: np.ndarray, fn: Any) -> list[float | None]:
    out: list[float | None] = []
    for col in rows.T:
        finite = col[~np.isnan(col)]
        out.append(round(float(fn(finite)), 6) if finite.size else None)
    return out


def _mock_job_view(spec: JobSpec, buckets: int) -> dict[str, Any]:
    """The `job` answer for `spec` (http_api.md), from the points it writes."""
    cat = catalogue.load()
    ranks_points = _written(spec)
    walls = [w for pts in ranks_points for series in pts.values() for w, _ in series]
    start, bucket_s, n = nice_buckets(min(walls), max(walls), buckets)
    ranks = []
    for rank, pts in enumerate(ranks_points):
        node, local = divmod(rank, spec.ranks_per_node)
        steps = pts.get("train/loss", [])
        ranks.append(
            {
                "rank": rank,
                "run": spec.run(rank),
                "host": spec.host(node),
                "node_rank": node,
                "local_rank": local,
                "samples_node": local == 0,
                "gpus": [local],
                "last_step": len(steps),
                "last_wall_time_s": max(w for s in pts.values() for w, _ in s),
                "last_step_wall_time_s": steps[-1][0] if steps else None,
            }
        )
    metrics = []
    for m in cat.job_metrics:
        rows = []
        for pts in ranks_points:
            tags = [t for t in pts if m.match(t)]
            per_tag = [_bucket_means(pts[t], start, bucket_s, n) for t in tags]
            if not per_tag:
                rows.append(np.full(n, np.nan))
            elif m.sum:
                stacked = np.vstack(per_tag)
                rows.append(
                    np.where(np.isnan(stacked).all(axis=0), np.nan, np.nansum(stacked, axis=0))
                )
            else:
                all_points = [p for t in tags for p in pts[t]]
                rows.append(_bucket_means(all_points, start, bucket_s, n))
        grid = np.vstack(rows)
        if np.isnan(grid).all():
            continue
        medians = np.array(
            [np.nanmedian(r) if not np.isnan(r).all() else np.nan for r in grid], dtype=float
        )
        ok = ~np.isnan(medians)
        order = np.where(ok, medians, -np.inf if m.worse == "high" else np.inf)
        worst_row = int(np.argmax(order) if m.worse == "high" else np.argmin(order))
        metrics.append(
            {
                "id": m.id,
                "tag": m.tag,
                "title": m.title,
                "unit": m.unit,
                "worse": m.worse,
                "description": m.description,
                "values": [_json_list(r) for r in grid],
                "min": _nan_stat(grid, np.min),
                "median": _nan_stat(grid, np.median),
                "max": _nan_stat(grid, np.max),
                "worst": {
                    "rank": worst_row,
                    "run": spec.run(worst_row),
                    "value": float(medians[worst_row]),
                    "job_median": float(np.median(medians[ok])),
                },
            }
        )
    gpu_metrics = [
        {"id": g.id, "title": g.title, "unit": g.unit, "y": g.y, "description": g.description}
        for g in cat.job_gpu_metrics
    ]
    nodes = []
    for node in range(spec.nodes):
        sampler = node * spec.ranks_per_node
        pts = ranks_points[sampler]
        gpus = []
        for g in range(spec.ranks_per_node):
            series = {}
            for gm in cat.job_gpu_metrics:
                tag = gm.tag.replace("{gpu}", str(g))
                series[gm.id] = _json_list(_bucket_means(pts.get(tag, []), start, bucket_s, n))
            total = pts.get(f"gpu/{g}/memory_total_bytes", [(0, 0.0)])[-1][1]
            gpus.append(
                {"gpu": g, "ranks": [sampler + g], "memory_total_bytes": total, "series": series}
            )
        nodes.append(
            {"node_rank": node, "host": spec.host(node), "run": spec.run(sampler), "gpus": gpus}
        )
    return {
        "job": spec.job,
        "folder": spec.folder,
        "world_size": spec.world_size,
        "node_count": spec.nodes,
        "start_wall_time_s": start,
        "end_wall_time_s": start + n * bucket_s,
        "bucket_s": bucket_s,
        "buckets": n,
        "ranks": ranks,
        "metrics": metrics,
        "gpu_metrics": gpu_metrics,
        "nodes": nodes,
        "findings": _mock_findings(spec),
    }


def _mock_findings(spec: JobSpec) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    s = spec.straggler_rank
    if s is not None:
        out.append(
            {
                "id": "straggler",
                "severity": "warning",
                "title": f"Rank {s} is the straggler",
                "text": f"Rank {s} ({spec.run(s)}) spends {spec.straggler_data_ms:g} ms between "
                f"steps against the job's median of {spec.fast_data_ms:g} ms; the other ranks "
                "wait for it inside their steps.",
                "numbers": {"data_time_ms": spec.straggler_data_ms},
                "rank": s,
                "run": spec.run(s),
            }
        )
    r = spec.stalled_rank
    if r is not None:
        out.append(
            {
                "id": "stalled_rank",
                "severity": "critical",
                "title": f"Rank {r} stopped logging training steps",
                "text": f"Rank {r} ({spec.run(r)}) logged no step after "
                f"{spec.stall_at_s:g} s while the others went on.",
                "numbers": {"stalled_for_s": spec.steps * spec.step_s - spec.stall_at_s},
                "rank": r,
                "run": spec.run(r),
            }
        )
    h = spec.heavy_memory_rank
    if h is not None:
        out.append(
            {
                "id": "uneven_gpu_memory",
                "severity": "warning",
                "title": "GPU memory differs a lot across ranks",
                "text": f"Rank {h} ({spec.run(h)}) holds 62 GiB of GPU memory, the median "
                "rank 31 GiB.",
                "numbers": {"max_bytes": 62.0 * GIB},
                "rank": h,
                "run": spec.run(h),
            }
        )
    return out


def _install_job_mock(context: Any, specs: list[JobSpec]) -> None:
    def handle(route: Any) -> None:
        q = urllib.parse.parse_qs(urllib.parse.urlparse(route.request.url).query)
        job, folder = q["job"][0], q.get("folder", [""])[0]
        buckets = int(q.get("buckets", ["120"])[0])
        spec = next((s for s in specs if s.job == job and s.folder == folder), None)
        if spec is None:
            route.fulfill(status=404, content_type="text/plain", body=f"no run of job {job}")
            return
        body = json.dumps(_mock_job_view(spec, buckets))
        route.fulfill(status=200, content_type="application/json", body=body)

    context.route(re.compile(r"/data/plugin/ttsmon/job\?"), handle)


class _JobTab(Tab):
    """A Tab whose `job` route is answered by Playwright (``mocked``) or the plugin."""

    def __init__(self, browser: Any, url: str, source: str, specs: list[JobSpec]) -> None:
        if source == "backend":
            super().__init__(browser, url)
            return
        real_new_context = browser.new_context

        def new_context(**kwargs: Any) -> Any:
            context = real_new_context(**kwargs)
            _install_job_mock(context, specs)
            return context

        browser.new_context = new_context
        try:
            super().__init__(browser, url)
        finally:
            browser.new_context = real_new_context


def _require_source(tb_url: str, source: str, spec: JobSpec) -> None:
    """The backend variant needs the plugin's `job` route: without it, this fails."""
    if source != "backend":
        return
    status, _ = get_json(
        api_url(tb_url, "job", [("job", spec.job), ("folder", spec.folder), ("buckets", "50")])
    )
    assert status == 200, f"the plugin's job route must answer 200, not {status}"


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


@pytest.mark.parametrize("source", SOURCES)
def test_job_view_of_a_64_rank_job(browser: Any, job_tb: str, source: str, tmp_path: Path) -> None:
    _require_source(job_tb, source, SPEC)
    tab = _JobTab(browser, job_tb, source, [SPEC])
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
            f"\njob view ({source}), 64 ranks x 8 GPUs: render {stats['lastRenderMs']:.0f} ms"
            f" (answer parsed -> drawn), load {stats['lastLoadMs']:.0f} ms (request -> drawn)"
        )
        _shot(job, tmp_path, f"heatmap-{source}")

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
        _shot(job, tmp_path, f"band-{source}")

        # Dark mode (TensorBoard's setting), the heatmaps again.
        frame.locator('.job-mode .seg-btn[data-mode="heatmap"]').click()
        page.evaluate("document.body.classList.add('dark-mode')")
        frame.wait_for_function("document.documentElement.classList.contains('dark')")
        _shot(job, tmp_path, f"dark-{source}")
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


@pytest.mark.parametrize("source", SOURCES)
def test_job_panel_appears_with_a_job_and_loose_runs_are_not_in_a_job(
    browser: Any, tmp_path: Path, source: str
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    _write_loose_run(root)
    with tensorboard_server(str(root), load_fast=True) as url:
        _wait_for_runs(url, 1)
        tab = _JobTab(browser, url, source, [SMALL])
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
            _require_source(url, source, SMALL)
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
    empty = _mock_job_view(SMALL, 50) | {
        "job": SPEC.job,
        "folder": SPEC.folder,
        "metrics": [],
        "nodes": [],
        "findings": [],
    }
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
