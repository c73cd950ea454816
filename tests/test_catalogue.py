"""The chart catalogue (tb_plugin_ttsmon/charts.json, read by catalogue.py and the tab).

Checked against metadata.py's table, the one list of every tag the recorder
writes: every series is drawn by a chart, every chart has one unit and one
"100 %" base, and the committed bundle embeds this same catalogue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tb_plugin_ttsmon import catalogue, metadata

PACKAGE = Path(__file__).parent.parent / "tb_plugin_ttsmon"

# What 100 % is for each percent tag of metadata.py's table, written down here
# independently of charts.json (from the table's descriptions and the
# recorder's sources). A new percent tag fails `test_every_percent_tag_has_a_base`
# until someone decides its base.
PERCENT_BASES = {
    "system/cpu_percent": "all cores",
    "system/cpu_core/{core}/utilization_percent": "one core",
    "process/cpu_percent": "one core",
    "system/memory_percent": "host memory",
    "system/swap_percent": "swap space",
    "system/logdir_disk_used_percent": "filesystem",
    "container/cpu_percent_of_limit": "container CPU quota",
    "container/memory_percent_of_limit": "container memory limit",
    "gpu/{gpu}/utilization_percent": "time",
    "gpu/{gpu}/memory_utilization_percent": "time",
    "gpu/{gpu}/memory_used_percent": "GPU memory",
}

# Example values for placeholders, to turn a pattern into a tag.
EXAMPLES = {"gpu": "1", "core": "3", "layer": "encoder/dense", "stage": "vocoder", "name": "bleu"}


def _example(pattern: str) -> str:
    return catalogue.fill(pattern, EXAMPLES)


@pytest.fixture(scope="module")
def cat() -> catalogue.Catalogue:
    return catalogue.load()


def test_every_recorded_series_is_drawn_by_exactly_one_chart(cat: catalogue.Catalogue) -> None:
    missing, doubled = [], []
    for spec in metadata.METRICS:
        tag = _example(spec.pattern)
        charts = [c.id for c in cat.charts_drawing(tag)]
        if not charts and spec.pattern not in cat.not_series:
            missing.append(spec.pattern)
        if len(charts) > 1:
            doubled.append((spec.pattern, charts))
    assert missing == [], f"series no chart draws: {missing}"
    assert doubled == [], f"series drawn twice: {doubled}"


def test_documents_are_listed_as_not_series_with_a_reason(cat: catalogue.Catalogue) -> None:
    assert set(cat.not_series) == {d.pattern for d in metadata.DOCUMENTS}
    for tag, reason in cat.not_series.items():
        assert len(reason) > 20, tag
        assert cat.charts_drawing(tag) == [], tag


def test_every_chart_tag_is_a_tag_of_the_metric_table(cat: catalogue.Catalogue) -> None:
    patterns = {m.pattern for m in metadata.METRICS}
    unknown = [(c.id, s.tag) for c in cat.charts for s in c.series if s.tag not in patterns]
    assert unknown == [], f"typos or tags the recorder never writes: {unknown}"


def test_each_chart_has_one_unit(cat: catalogue.Catalogue) -> None:
    for c in cat.charts:
        units = {metadata.spec_for_tag(_example(s.tag)).unit for s in c.series}
        assert len(units) == 1, (c.id, units)
        if c.unit is not None:
            assert units == {c.unit}, (c.id, c.unit, units)


def test_every_percent_tag_has_a_base() -> None:
    percent = {m.pattern for m in metadata.METRICS if m.unit == metadata.UNIT_PERCENT}
    assert percent == set(PERCENT_BASES)


def test_each_percent_chart_has_one_base(cat: catalogue.Catalogue) -> None:
    for c in cat.charts:
        bases = {PERCENT_BASES[s.tag] for s in c.series if s.tag in PERCENT_BASES}
        if c.unit == metadata.UNIT_PERCENT:
            assert bases == {c.percent_of}, (c.id, c.percent_of, bases)
        else:
            assert bases == set() and c.percent_of is None, c.id


def test_system_and_process_cpu_are_different_charts(cat: catalogue.Catalogue) -> None:
    (system,) = cat.charts_drawing("system/cpu_percent")
    (process,) = cat.charts_drawing("process/cpu_percent")
    assert system.id != process.id
    assert (system.percent_of, process.percent_of) == ("all cores", "one core")
    assert "one core" in process.description


def test_chart_ids_are_unique_and_sections_known(cat: catalogue.Catalogue) -> None:
    ids = [c.id for c in cat.charts]
    assert len(ids) == len(set(ids))
    assert {c.section for c in cat.charts} == {s.id for s in cat.sections}
    for c in cat.charts:
        for s in c.series:
            assert cat.section_of(_example(s.tag)) == c.section, (c.id, s.tag)


def test_plan_for_a_two_gpu_run(cat: catalogue.Catalogue) -> None:
    tags = [
        "system/cpu_percent",
        "process/cpu_percent",
        *(f"system/cpu_core/{i}/utilization_percent" for i in (0, 1, 2, 10)),
        *(f"gpu/{g}/{t}" for g in (0, 1) for t in ("power_w", "power_limit_w", "sm_clock_mhz")),
        "tf/gpu/0/memory_current_bytes",
        "tf/gpu/0/memory_peak_bytes",
        "train/loss",  # another section's: ignored
    ]
    plan = {p.id: p for p in cat.plan("system", tags)}
    assert list(plan) == ["cpu", "process-cpu", "cpu-cores", "tf-memory", "gpu-power", "gpu-clocks"]
    power = plan["gpu-power"]
    assert power.unit == "W"
    assert [(ln.tag, ln.label, ln.role) for ln in power.lines] == [
        ("gpu/0/power_w", "GPU 0", "line"),
        ("gpu/1/power_w", "GPU 1", "line"),
        ("gpu/0/power_limit_w", "GPU 0 limit", "limit"),
        ("gpu/1/power_limit_w", "GPU 1 limit", "limit"),
    ]
    # Cores in numeric order, one colour each.
    assert [ln.label for ln in plan["cpu-cores"].lines] == ["core 0", "core 1", "core 2", "core 10"]
    assert [ln.label for ln in plan["tf-memory"].lines] == ["TF GPU 0", "TF GPU 0 peak"]
    assert {ln.unit for ln in plan["tf-memory"].lines} == {"B"}


def test_plan_gives_user_metrics_their_own_chart(cat: catalogue.Catalogue) -> None:
    tags = ["train/loss", "val/loss", "train/tokens_per_s", "train/bleu", "val/bleu"]
    plan = {p.id: p for p in cat.plan("training", tags)}
    assert list(plan) == ["loss", "metric-bleu", "metric-tokens_per_s"]
    assert [ln.tag for ln in plan["loss"].lines] == ["train/loss", "val/loss"]
    bleu = plan["metric-bleu"]
    assert bleu.title == "Bleu"
    assert [(ln.tag, ln.label) for ln in bleu.lines] == [
        ("train/bleu", "train"),
        ("val/bleu", "val"),
    ]
    assert plan["metric-tokens_per_s"].unit == "1/s"  # from the tag's suffix, as recorded


def test_bundle_embeds_this_catalogue(cat: catalogue.Catalogue) -> None:
    """The tab is built from the same file: every chart's id, title and
    description is in the committed bundle (``npm run check`` proves the bundle
    is a fresh build of frontend/src)."""
    js = (PACKAGE / "static" / "index.js").read_text(encoding="utf-8")
    missing = [
        (c.id, text)
        for c in cat.charts
        for text in (c.id, c.title, c.description)
        if json.dumps(text, ensure_ascii=False) not in js
    ]
    assert missing == [], missing
    # The old hand-written copy of the table is gone from the sources.
    specs = (PACKAGE.parent / "frontend" / "src" / "specs.ts").read_text(encoding="utf-8")
    assert "charts.json" in specs
    assert re.search(r"system/cpu_percent|gpu/\{gpu\}", specs) is None


def test_catalogue_json_is_the_packaged_file() -> None:
    text = catalogue.catalogue_text()
    assert text == (PACKAGE / "charts.json").read_text(encoding="utf-8")
    assert json.loads(text)["version"] == 1
