"""The chart catalogue: which series go in which chart, on which axis and unit.

The catalogue is data, ``tb_plugin_ttsmon/charts.json``, written once and read
by every consumer: the tab bundles the same file into ``static/index.js``
(``frontend/src/specs.ts`` reads it), and Python consumers (the HTML report,
the seed's matplotlib charts) read it through this module. Tag patterns use the
placeholders of `tb_plugin_ttsmon.metadata`'s table (``gpu/{gpu}/power_w``).

A Python consumer asks which charts a section has for a run's tags, and which
of those tags each chart draws with which label and unit::

    from tb_plugin_ttsmon import catalogue

    for chart in catalogue.load().plan("system", run_tags):
        print(chart.title, chart.unit, [(ln.tag, ln.label) for ln in chart.lines])

Rules the catalogue keeps (``tests/test_catalogue.py`` checks them):

* Every series tag of the metric table is drawn by some chart, or is listed in
  ``not_series`` with a reason (the JSON documents).
* A chart has one unit, and a percent chart one base (``percent_of``): system
  CPU (100 % = every core) and process CPU (100 % = one core) are different
  charts.
* A placeholder series never draws a tag that some chart names exactly, so
  ``train/{name}`` leaves ``train/loss`` to the Loss chart.

This module imports only the standard library and `metadata`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

from tb_plugin_ttsmon import metadata

CATALOGUE_FILE = "charts.json"

# How a series is drawn in its chart.
ROLE_LINE = "line"  # a line; a chart's lines are told apart by dash
ROLE_LIMIT = "limit"  # a thin dotted reference line: a total, a limit, a quota
ROLE_POINTS = "points"  # dots only: one value per request
ROLES = frozenset({ROLE_LINE, ROLE_LIMIT, ROLE_POINTS})

# How a chart's lines are grouped into charts.
LAYOUT_RUNS = "runs"  # one chart; one colour per run, a line per series (and GPU)
LAYOUT_ITEMS = "items"  # one chart per run; one colour per item (core, layer, stage)
LAYOUT_NAMES = "names"  # one chart per `{name}` (user metrics train/X and val/X)
LAYOUTS = frozenset({LAYOUT_RUNS, LAYOUT_ITEMS, LAYOUT_NAMES})

# The y range.
Y_PERCENT = "percent"  # 0 to at least 100
Y_ZERO = "zero"  # from 0 (or below, if a value is negative)
Y_AUTO = "auto"  # the data's range
Y_BOOL = "bool"  # 0 and 1, as off / on
Y_RANGES = frozenset({Y_PERCENT, Y_ZERO, Y_AUTO, Y_BOOL})

# The plot's shape.
STYLE_PLOT = "plot"  # a full-height chart
STYLE_LANE = "lane"  # a short strip of step lines (0/1 states, bitmasks)
STYLES = frozenset({STYLE_PLOT, STYLE_LANE})

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_COMPONENT = r"[A-Za-z0-9_.\-]+"
# As in metadata.MetricSpec: an index, or one or more tag components.
_PLACEHOLDER_REGEX = {
    "gpu": r"\d+",
    "core": r"\d+",
    "layer": rf"{_COMPONENT}(?:/{_COMPONENT})*",
    "stage": rf"{_COMPONENT}(?:/{_COMPONENT})*",
    "name": rf"{_COMPONENT}(?:/{_COMPONENT})*",
}


def natural_key(text: str) -> tuple[Any, ...]:
    """A sort key that puts ``core 2`` before ``core 10``.

    The tab sorts with the same rule (``frontend/src/specs.ts``).
    """
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", text)
        if part
    )


@functools.lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, last = [], 0
    for m in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[last : m.start()]))
        name = m.group(1)
        if name not in _PLACEHOLDER_REGEX:
            raise ValueError(f"unknown placeholder {{{name}}} in {pattern!r}")
        out.append(f"(?P<{name}>{_PLACEHOLDER_REGEX[name]})")
        last = m.end()
    out.append(re.escape(pattern[last:]))
    return re.compile("".join(out))


def fill(template: str, values: dict[str, str]) -> str:
    """`template` with each ``{placeholder}`` replaced by its value in `values`."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


@dataclasses.dataclass(frozen=True)
class SeriesSpec:
    """One series row of a chart.

    Attributes:
      tag: The tag or tag pattern (placeholders as in `metadata.METRICS`).
      label: Legend text after the run name, with the same placeholders
        (``"GPU {gpu}"``); ``""`` for the run name alone.
      role: One of the ``ROLE_*`` strings.
    """

    tag: str
    label: str = ""
    role: str = ROLE_LINE

    @property
    def is_pattern(self) -> bool:
        """Whether `tag` has a placeholder."""
        return "{" in self.tag

    def match(self, tag: str) -> dict[str, str] | None:
        """The placeholder values if `tag` is one of this row's tags, else None."""
        if not self.is_pattern:
            return {} if tag == self.tag else None
        m = _pattern_regex(self.tag).fullmatch(tag)
        return None if m is None else m.groupdict()


@dataclasses.dataclass(frozen=True)
class RefLine:
    """A horizontal reference line (``RTF = 1``: real time)."""

    value: float
    label: str


@dataclasses.dataclass(frozen=True)
class ChartSpec:
    """One chart of the catalogue.

    Attributes:
      id: Stable identifier (the tab's ``data-chart``; file names of exports).
      section: The `Section` id it belongs to.
      title: The chart's title; ``{name}`` in a ``names`` layout.
      description: One line for people (the title's tooltip).
      unit: The one unit of the y axis (a `metadata.UNIT_*` string), or None
        where each chart of a ``names`` layout takes its tags' unit.
      percent_of: What 100 % is, for a ``%`` chart (``"one core"``); else None.
      y: One of the ``Y_*`` ranges.
      layout: One of the ``LAYOUT_*`` strings.
      style: One of the ``STYLE_*`` strings.
      series: The rows drawn, in legend order.
      ref_lines: Horizontal reference lines.
      bits: For a bitmask chart, ``(bit value, name)`` of each known bit.
    """

    id: str
    section: str
    title: str
    description: str
    unit: str | None
    percent_of: str | None
    y: str
    layout: str
    style: str
    series: tuple[SeriesSpec, ...]
    ref_lines: tuple[RefLine, ...] = ()
    bits: tuple[tuple[int, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Section:
    """A group of charts in the tab (System, Training, Inference).

    Attributes:
      id: ``"system"``, ``"training"`` or ``"inference"``.
      title: The section's heading.
      empty: Shown where a run has none of the section's data.
      scopes: First tag components whose tags belong to the section.
      x: ``"step"`` where the section's tags are placed by their own step
        (training), ``"wall"`` where by wall time.
    """

    id: str
    title: str
    empty: str
    scopes: tuple[str, ...]
    x: str


@dataclasses.dataclass(frozen=True)
class PlannedLine:
    """One line of a planned chart: a concrete tag with its legend text and unit."""

    tag: str
    label: str
    role: str
    unit: str
    item: str = ""  # the placeholder value of an ``items`` chart (a core, a layer)


@dataclasses.dataclass(frozen=True)
class PlannedChart:
    """A chart of the catalogue with the tags one run has for it.

    Attributes:
      spec: The catalogue row.
      id: `spec.id`, or ``"<spec.id>-<name>"`` for a ``names`` chart.
      title: `spec.title` with its placeholder filled (and humanized).
      unit: The y axis unit.
      lines: The lines, in legend order; never empty.
    """

    spec: ChartSpec
    id: str
    title: str
    unit: str
    lines: tuple[PlannedLine, ...]


# Which end of a job metric names the worst rank.
WORSE_HIGH = "high"
WORSE_LOW = "low"
WORSE = frozenset({WORSE_HIGH, WORSE_LOW})


@dataclasses.dataclass(frozen=True)
class JobMetric:
    """One row of the job view (issue 11): a metric compared across a job's ranks.

    Attributes:
      id: Stable identifier (the tab's ``data-metric``).
      tag: The tag, or a ``{gpu}`` pattern (each rank's GPUs).
      title: The row's title.
      description: One line for people.
      unit: The value's unit (a `metadata.UNIT_*` string).
      worse: `WORSE_HIGH` where the highest rank is the worst (step time),
        `WORSE_LOW` where the lowest is (steps per second).
      sum: Whether a rank's value is the sum over the tags the pattern
        matches (GPU memory over the rank's GPUs); else their mean.
      y: The y range of a GPU metric (``Y_*``).
    """

    id: str
    tag: str
    title: str
    description: str
    unit: str
    worse: str = WORSE_HIGH
    sum: bool = False
    y: str = Y_AUTO

    def match(self, tag: str) -> bool:
        """Whether `tag` is this metric's tag (or one of its pattern's)."""
        return _pattern_regex(self.tag).fullmatch(tag) is not None


def _job_metric(m: dict[str, Any]) -> JobMetric:
    mid = m["id"]
    return JobMetric(
        id=mid,
        tag=m["tag"],
        title=m["title"],
        description=m.get("description", ""),
        unit=m["unit"],
        worse=_one_of(m.get("worse", WORSE_HIGH), WORSE, "worse", mid),
        sum=bool(m.get("sum", False)),
        y=_one_of(m.get("y", Y_AUTO), Y_RANGES, "y", mid),
    )


def humanize(name: str) -> str:
    """``"tokens_per_s"`` as a title: ``"Tokens per s"``."""
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


class Catalogue:
    """The parsed catalogue; get it with `load()`."""

    def __init__(self, doc: dict[str, Any]) -> None:
        """Builds the catalogue from the parsed JSON document.

        Raises:
          ValueError: a field holds a value outside its allowed set.
        """
        self.step_tag: str = doc["step_tag"]
        self.sections: tuple[Section, ...] = tuple(
            Section(s["id"], s["title"], s["empty"], tuple(s["scopes"]), s["x"])
            for s in doc["sections"]
        )
        self.charts: tuple[ChartSpec, ...] = tuple(_chart(c) for c in doc["charts"])
        self.not_series: dict[str, str] = {d["tag"]: d["reason"] for d in doc["not_series"]}
        job = doc.get("job", {})
        # The job view's rows (per rank) and its per-node GPU small multiples.
        self.job_metrics: tuple[JobMetric, ...] = tuple(_job_metric(m) for m in job["metrics"])
        self.job_gpu_metrics: tuple[JobMetric, ...] = tuple(
            _job_metric(m) for m in job["gpu_metrics"]
        )
        self._scope_section = {scope: s.id for s in self.sections for scope in s.scopes}
        # Tags some chart names exactly: no placeholder row draws them.
        self.exact_tags: frozenset[str] = frozenset(
            s.tag for c in self.charts for s in c.series if not s.is_pattern
        )
        section_ids = {s.id for s in self.sections}
        for c in self.charts:
            if c.section not in section_ids:
                raise ValueError(f"chart {c.id!r}: unknown section {c.section!r}")

    def section(self, section_id: str) -> Section:
        """The section with id `section_id`.

        Raises:
          KeyError: no such section.
        """
        for s in self.sections:
            if s.id == section_id:
                return s
        raise KeyError(section_id)

    def section_of(self, tag: str) -> str | None:
        """The id of the section whose scope `tag` starts with, or None."""
        return self._scope_section.get(tag.split("/", 1)[0])

    def chart(self, chart_id: str) -> ChartSpec:
        """The chart with id `chart_id`.

        Raises:
          KeyError: no such chart.
        """
        for c in self.charts:
            if c.id == chart_id:
                return c
        raise KeyError(chart_id)

    def charts_of(self, section_id: str) -> tuple[ChartSpec, ...]:
        """The charts of a section, in display order."""
        return tuple(c for c in self.charts if c.section == section_id)

    def match(self, row: SeriesSpec, tag: str) -> dict[str, str] | None:
        """`row.match(tag)`, except that a pattern never takes an exactly named tag."""
        if row.is_pattern and tag in self.exact_tags:
            return None
        return row.match(tag)

    def charts_drawing(self, tag: str) -> list[ChartSpec]:
        """The charts that draw `tag` (usually one)."""
        return [c for c in self.charts if any(self.match(s, tag) is not None for s in c.series)]

    def plan(self, section_id: str, tags: Iterable[str]) -> list[PlannedChart]:
        """The charts of a section that one run's `tags` fill, in display order.

        A chart none of whose series the run has is left out. Units come from
        `metadata.spec_for_tag`, so they are what the recorder wrote.

        Args:
          section_id: ``"system"``, ``"training"`` or ``"inference"``.
          tags: The run's tags (any iterable; others are ignored).
        """
        have = sorted(set(tags), key=natural_key)
        out: list[PlannedChart] = []
        for spec in self.charts_of(section_id):
            if spec.layout == LAYOUT_NAMES:
                out.extend(self._plan_names(spec, have))
                continue
            lines: list[PlannedLine] = []
            for row in spec.series:
                for tag in have:
                    values = self.match(row, tag)
                    if values is None:
                        continue
                    item = next(iter(values.values()), "") if spec.layout == LAYOUT_ITEMS else ""
                    lines.append(_line(row, tag, values, item))
            if spec.layout == LAYOUT_ITEMS:
                lines.sort(key=lambda ln: natural_key(ln.item))
            if lines:
                unit = spec.unit if spec.unit is not None else lines[0].unit
                out.append(PlannedChart(spec, spec.id, spec.title, unit, tuple(lines)))
        return out

    def _plan_names(self, spec: ChartSpec, have: list[str]) -> list[PlannedChart]:
        by_name: dict[str, list[PlannedLine]] = {}
        for row in spec.series:
            for tag in have:
                values = self.match(row, tag)
                if values is not None:
                    by_name.setdefault(values["name"], []).append(_line(row, tag, values, ""))
        out = []
        for name in sorted(by_name, key=natural_key):
            lines = by_name[name]
            unit = spec.unit if spec.unit is not None else lines[0].unit
            title = fill(spec.title, {"name": humanize(name)})
            out.append(PlannedChart(spec, f"{spec.id}-{name}", title, unit, tuple(lines)))
        return out


def _line(row: SeriesSpec, tag: str, values: dict[str, str], item: str) -> PlannedLine:
    return PlannedLine(
        tag=tag,
        label=fill(row.label, values),
        role=row.role,
        unit=metadata.spec_for_tag(tag).unit,
        item=item,
    )


def _one_of(value: str, allowed: frozenset[str], what: str, chart_id: str) -> str:
    if value not in allowed:
        raise ValueError(f"chart {chart_id!r}: {what} {value!r} is not one of {sorted(allowed)}")
    return value


def _chart(c: dict[str, Any]) -> ChartSpec:
    cid = c["id"]
    series = tuple(
        SeriesSpec(
            s["tag"],
            s.get("label", ""),
            _one_of(s.get("role", ROLE_LINE), ROLES, "role", cid),
        )
        for s in c["series"]
    )
    return ChartSpec(
        id=cid,
        section=c["section"],
        title=c["title"],
        description=c.get("description", ""),
        unit=c["unit"],
        percent_of=c.get("percent_of"),
        y=_one_of(c.get("y", Y_AUTO), Y_RANGES, "y", cid),
        layout=_one_of(c.get("layout", LAYOUT_RUNS), LAYOUTS, "layout", cid),
        style=_one_of(c.get("style", STYLE_PLOT), STYLES, "style", cid),
        series=series,
        ref_lines=tuple(RefLine(float(r["value"]), r["label"]) for r in c.get("ref_lines", [])),
        bits=tuple((int(b), str(name)) for b, name in c.get("bits", [])),
    )


def catalogue_text() -> str:
    """The catalogue file's text, as packaged."""
    return resources.files("tb_plugin_ttsmon").joinpath(CATALOGUE_FILE).read_text("utf-8")


@functools.lru_cache(maxsize=1)
def load() -> Catalogue:
    """The packaged catalogue (parsed once per process)."""
    return Catalogue(json.loads(catalogue_text()))
