"""Exports and the static HTML report of `ttsmon export` / `ttsmon report`.

Logs are read as the plugin reads them: through the read layer
(`tb_plugin_ttsmon.query`: TensorBoard's data provider, here the Python
loader keeping every point).
The report is one HTML file: matplotlib charts (Agg) embedded as base64 PNG,
every user string escaped, no scripts and no external URLs.
"""

from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

import numpy as np

from tb_plugin_ttsmon import analytics, catalogue
from tb_plugin_ttsmon.query import LogdirData, encode, minmax_indices
from tb_plugin_ttsmon.query import profiles as profiles_lib
from tb_plugin_ttsmon.units import format_bytes
from tb_plugin_ttsmon.version import VERSION

__all__ = ["LogdirData", "Progress", "export", "render_html"]

# Points per line in a chart: more are downsampled, keeping spikes.
CHART_POINTS = 3000


class Progress:
    """A one-line progress bar on stderr (``label [#####.....] 3/10``)."""

    def __init__(
        self, total: int, label: str, *, enabled: bool = True, stream: TextIO | None = None
    ) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.enabled = enabled
        self.done = 0
        self._stream = stream

    def advance(self, n: int = 1) -> None:
        """Counts `n` more units of work and redraws the bar."""
        self.done = min(self.done + n, self.total)
        if not self.enabled:
            return
        stream = self._stream or sys.stderr
        width = 30
        filled = round(width * self.done / self.total)
        bar = "#" * filled + "." * (width - filled)
        end = "\n" if self.done == self.total else ""
        stream.write(f"\r{self.label} [{bar}] {self.done}/{self.total}{end}")
        stream.flush()


def export(
    data: LogdirData,
    runs: Sequence[str],
    fmt: str,
    *,
    single: bool,
    progress: Progress | None = None,
) -> str:
    """`runs` as CSV or JSON text.

    Args:
      single: The plugin's shape for one run (``Reader.export_csv`` /
        ``export_json``); else CSV with a leading ``run`` column and JSON
        ``{"runs": [...]}``.
    """
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown format {fmt!r}")
    if single and len(runs) != 1:
        raise ValueError("single=True needs exactly one run")
    docs: list[Any] = []
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    for i, run in enumerate(runs):
        if fmt == "json":
            docs.append(data.reader.export_json(run))
        elif single:
            buf.write(data.reader.export_csv(run))
        else:
            rows = csv.reader(io.StringIO(data.reader.export_csv(run)))
            header = next(rows)
            if i == 0:
                out.writerow(["run", *header])
            for row in rows:
                out.writerow([run, *row])
        if progress is not None:
            progress.advance()
    if fmt == "csv":
        return buf.getvalue()
    doc = docs[0] if single else {"runs": docs}
    return encode.dumps(doc) + "\n"


# -- charts ---------------------------------------------------------------------------------------

_pyplot: Any = None


def _plt() -> Any:
    global _pyplot
    if _pyplot is None:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        _pyplot = plt
    return _pyplot


_BYTE_UNITS = (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10), ("B", 1))


def _scale(unit: str, values: Sequence[np.ndarray]) -> tuple[str, float]:
    """A readable unit and divisor for byte series; others unchanged."""
    if unit not in ("B", "B/s"):
        return unit, 1.0
    finite = [v[np.isfinite(v)] for v in values]
    peak = max((float(np.max(np.abs(v))) for v in finite if len(v)), default=0.0)
    for name, div in _BYTE_UNITS:
        if peak >= div:
            return name + unit[1:], float(div)
    return unit, 1.0


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= CHART_POINTS:
        return x, y
    idx = minmax_indices(y, CHART_POINTS)
    return x[idx], y[idx]


class Line:
    """One line of a chart: x, y, label and matplotlib style keywords."""

    def __init__(self, label: str, x: np.ndarray, y: np.ndarray, **style: Any) -> None:
        self.label = label
        self.x = x
        self.y = y
        self.style = style


class Band:
    """A shaded range of a chart: x, the lower and the upper edge."""

    def __init__(self, label: str, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
        self.label = label
        self.x = x
        self.lo = lo
        self.hi = hi


def chart(
    title: str,
    lines: Sequence[Line],
    *,
    xlabel: str,
    unit: str = "",
    hlines: Sequence[tuple[float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
    logy: bool = False,
    legend: bool = True,
    bands: Sequence[Band] = (),
) -> str:
    """One chart as a base64 PNG ``<figure>``.

    Args:
      hlines: (y, label) reference lines (e.g. RTF 1.0).
      marks: (x, label) red vertical marks (e.g. the steps of a NaN loss).
      bands: Shaded ranges (a job's min to max across ranks), under the lines.
    """
    plt = _plt()
    unit_shown, div = _scale(unit, [ln.y for ln in lines] + [b.hi for b in bands])
    fig, ax = plt.subplots(figsize=(8.0, 2.8), dpi=96)
    try:
        for b in bands:
            ax.fill_between(b.x, b.lo / div, b.hi / div, alpha=0.25, linewidth=0, label=b.label)
        for ln in lines:
            x, y = _thin(ln.x, ln.y)
            ax.plot(x, y / div, label=ln.label, **{"linewidth": 1.2, **ln.style})
        for level, label in hlines:
            ax.axhline(level / div, color="#c0392b", linestyle="--", linewidth=1, label=label)
        for i, (at, label) in enumerate(marks):
            ax.axvline(at, color="#e74c3c", alpha=0.6, linewidth=1, label=label if i == 0 else None)
        if logy:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlabel(xlabel, fontsize=8)
        if unit_shown:
            ax.set_ylabel(unit_shown, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if legend and len(lines) + len(bands) + len(hlines) + (1 if marks else 0) > 1:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{b64}"></figure>'


# -- HTML -----------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _fmt(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return "—" if x is None else str(x).lower()
    if isinstance(x, float):
        if not math.isfinite(x):
            return "NaN" if math.isnan(x) else ("∞" if x > 0 else "−∞")
        return f"{x:.4g}"
    if isinstance(x, (dict, list)):
        return encode.dumps(x)
    return str(x)


def _when(t: Any) -> str:
    if not isinstance(t, (int, float)) or not math.isfinite(t):
        return "—"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


def _bytes(x: Any) -> str:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return "—"
    return format_bytes(x)


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header) if header else ""
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f"<table>{f'<thead><tr>{head}</tr></thead>' if head else ''}<tbody>{body}</tbody></table>"
    )


def _none(text: str) -> str:
    return f'<p class="none">{_e(text)}</p>'


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans","Noto Sans Ethiopic",
"Abyssinica SIL","Nyala",sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;
color:#1d2733;background:#fff;line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:2px solid #34495e;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em;color:#34495e}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f5f7}td{word-break:break-word;max-width:48em}
figure{margin:.6em 0;display:inline-block}figure img{max-width:100%;height:auto}
.none{color:#57606a;font-style:italic}
.sev-critical{color:#b3261e;font-weight:600}.sev-warning{color:#9a6700;font-weight:600}
nav ul{columns:2}code{font-size:.9em}
"""


def _dict(x: Any) -> dict[str, Any]:
    return x if isinstance(x, dict) else {}


def _facts_section(entry: Mapping[str, Any], overview: Mapping[str, Any] | None) -> str:
    facts = entry.get("facts")
    if not isinstance(facts, dict):
        return _none("No run facts were recorded.")
    rec = _dict(facts.get("recorder"))
    host = _dict(facts.get("host"))
    rows: list[tuple[str, Any]] = [
        ("host", facts.get("hostname")),
        ("user", facts.get("user")),
        ("program", facts.get("program")),
        ("started", _when(entry.get("started_at_s"))),
        ("last data", _when(entry.get("last_wall_time_s"))),
        ("restarts", entry.get("restarts")),
        ("python", facts.get("python")),
        ("platform", facts.get("platform")),
        ("CPU", host.get("cpu_model")),
        ("logical cores", host.get("cpu_count_logical")),
        ("memory", _bytes(host.get("memory_total_bytes"))),
    ]
    if overview is not None:
        rows.append(("samples", overview.get("sample_count")))
        dur = overview.get("duration_s")
        rows.append(("duration", f"{dur:.1f} s" if isinstance(dur, (int, float)) else None))
        training = overview.get("training") or {}
        rows.append(("last training step", training.get("last_step")))
    out = "<h3>Run</h3>" + _table([(k, _fmt(v)) for k, v in rows])
    versions = facts.get("versions")
    if isinstance(versions, dict):
        out += "<h3>Versions</h3>" + _table(
            [(k, _fmt(v)) for k, v in sorted(versions.items())], ["package", "version"]
        )
    nvml = _dict(facts.get("nvml"))
    devices = nvml.get("devices") if isinstance(nvml.get("devices"), list) else []
    out += "<h3>Devices</h3>"
    if devices:
        out += _table(
            [
                (
                    d.get("index"),
                    d.get("name"),
                    _bytes(d.get("memory_total_bytes")),
                    _fmt(d.get("power_limit_w")),
                )
                for d in devices
                if isinstance(d, dict)
            ],
            ["GPU", "name", "memory", "power limit (W)"],
        )
    else:
        reason = nvml.get("reason") if nvml else None
        out += _none("No GPU sampled" + (f": {reason}" if reason else "."))
    if rec:
        out += "<h3>Recorder settings</h3>" + _table(
            [(k, _fmt(v)) for k, v in sorted(rec.items())], ["setting", "value"]
        )
    return out


# Lines of one chart beyond which the legend is left out (a 128-core host).
MAX_LEGEND_LINES = 16


def _catalogue_section(data: Mapping[str, Any], section_id: str, t0: float) -> list[str]:
    """The charts the catalogue (`charts.json`) plans for this run's tags in one section.

    The same rows as the tab's: titles, units, one "100 %" base per chart,
    limits dotted, per-request values as dots, state lanes as steps.
    """
    cat = catalogue.load()
    by_step = cat.section(section_id).x == "step"
    xlabel = "training step" if by_step else "seconds since the first sample"
    out = []
    for planned in cat.plan(section_id, [t for t in data if len(data[t].value)]):
        spec = planned.spec
        lines, marks = [], []
        for ln in planned.lines:
            s = data[ln.tag]
            x = s.step.astype(np.float64) if by_step else s.wall_time - t0
            keep = np.isfinite(s.value)
            style: dict[str, Any] = {}
            if ln.role == catalogue.ROLE_LIMIT:
                style = {"linestyle": ":", "linewidth": 1.0}
            elif ln.role == catalogue.ROLE_POINTS:
                style = {"marker": ".", "linestyle": "none", "alpha": 0.6}
            if spec.style == catalogue.STYLE_LANE:
                style["drawstyle"] = "steps-post"
            label = ln.label or ln.tag
            lines.append(Line(label, x[keep], s.value[keep], **style))
            if ln.tag in ("train/loss", "val/loss"):
                bad = ~keep
                marks += [(float(at), f"non-finite {ln.tag}") for at in x[bad].tolist()]
        title = planned.title
        if spec.percent_of:
            title += f" (100 % = {spec.percent_of})"
        if marks:
            title += f" ({len(marks)} non-finite values marked)"
        positive = all(len(ln.y) and float(np.min(ln.y)) > 0 for ln in lines)
        logy = spec.id == "gradient-norm" and positive
        out.append(
            chart(
                title,
                lines,
                xlabel=xlabel,
                unit=planned.unit,
                hlines=[(r.value, r.label) for r in spec.ref_lines],
                marks=marks,
                logy=logy,
                legend=len(lines) <= MAX_LEGEND_LINES,
            )
        )
    return out


def _system_section(data: Mapping[str, Any], t0: float) -> str:
    out = _catalogue_section(data, "system", t0)
    if out and not any(t.startswith("gpu/") for t in data):
        out.append(_none("No GPU metrics in this run."))
    return "".join(out) if out else _none("No system metrics were sampled.")


def _training_section(data: Mapping[str, Any]) -> str:
    out = _catalogue_section(data, "training", 0.0)
    return "".join(out) if out else _none("No training metrics were logged.")


def _inference_section(data: Mapping[str, Any], t0: float) -> str:
    lat = data.get("inference/latency_ms")
    if lat is None or not len(lat.value):
        return _none("No inference requests were logged.")
    finite = lat.value[np.isfinite(lat.value)]
    rows: list[tuple[str, Any]] = [("requests", len(lat.value))]
    if len(finite):
        p50, p95, p99 = np.percentile(finite, [50, 95, 99]).tolist()
        rows += [("p50 latency (ms)", f"{p50:.4g}"), ("p95 latency (ms)", f"{p95:.4g}")]
        rows += [("p99 latency (ms)", f"{p99:.4g}"), ("max latency (ms)", f"{finite.max():.4g}")]
    rtf = data.get("inference/rtf")
    if rtf is not None and len(rtf.value):
        r = rtf.value[np.isfinite(rtf.value)]
        if len(r):
            rows.append(("mean RTF", f"{float(np.mean(r)):.4g}"))
            rows.append(("requests slower than real time", int(np.sum(r > 1.0))))
    out = [_table(rows, ["inference", "value"])]
    out += _catalogue_section(data, "inference", t0)
    return "".join(out)


def _sev(sev: Any) -> str:
    return f'<span class="sev-{_e(sev)}">{_e(sev)}</span>'


def _alerts_section(events: Sequence[Mapping[str, Any]]) -> str:
    if not events:
        return _none("No alerts fired.")
    body = "".join(
        "<tr>"
        f"<td>{_e(_when(e.get('wall_time_s')))}</td><td>{_sev(e.get('severity'))}</td>"
        f"<td>{_e(e.get('state'))}</td><td>{_e(e.get('rule'))}</td><td>{_e(e.get('tag'))}</td>"
        f"<td>{_e(_fmt(e.get('value')))}</td><td>{_e(e.get('message'))}</td>"
        "</tr>"
        for e in events
    )
    head = "".join(
        f"<th>{h}</th>" for h in ("time", "severity", "state", "rule", "tag", "value", "message")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anomalies_section(found: Sequence[analytics.Anomaly]) -> str:
    if not found:
        return _none("No anomalies detected.")
    body = "".join(
        "<tr>"
        f"<td>{_e(_when(a.start_wall_time_s))}</td><td>{_sev(a.severity)}</td>"
        f"<td>{_e(a.type)}</td><td>{_e(a.tag)}</td><td>{_e(a.message)}</td>"
        "</tr>"
        for a in found
    )
    head = "".join(f"<th>{h}</th>" for h in ("start", "severity", "type", "tag", "message"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _findings_section(found: Sequence[analytics.Finding]) -> str:
    if not found:
        return _none("Nothing to report: no efficiency finding applies to this run.")
    items = "".join(
        f"<li>{_sev(f.severity)} <strong>{_e(f.title)}</strong>: {_e(f.text)}</li>" for f in found
    )
    return f"<ul>{items}</ul>"


def _profiles_section(answer: Mapping[str, Any] | None, error: str | None) -> str:
    if error is not None:
        return _none(f"Profiler sessions could not be listed: {error}")
    sessions = (answer or {}).get("sessions") or []
    if not sessions:
        return _none("No profiler captures.")
    rows = []
    for s in sessions:
        summary = s.get("summary") if isinstance(s.get("summary"), dict) else None
        hosts = ", ".join(str(h.get("host")) for h in s.get("hosts") or [] if isinstance(h, dict))
        steps = f"{_fmt(s.get('start_step'))}–{_fmt(s.get('stop_step'))}"
        status = s.get("capture_status") or "—"
        if s.get("capture_error"):
            status = f"{status}: {s.get('capture_error')}"
        text = _profile_summary(summary) if summary is not None else "—"
        rows.append(
            (
                s.get("session"),
                s.get("trigger"),
                _when(s.get("start_wall_time_s")),
                steps,
                hosts,
                status,
                text,
            )
        )
    return _table(rows, ["session", "trigger", "started", "steps", "hosts", "status", "summary"])


def _profile_summary(summary: Mapping[str, Any]) -> str:
    """One line from a session's xprof summary (`query.profiles.summarize`)."""
    parts = []
    mean, sd = summary.get("step_time_ms_mean"), summary.get("step_time_ms_stddev")
    if isinstance(mean, (int, float)):
        spread = f" ± {_fmt(float(sd))}" if isinstance(sd, (int, float)) else ""
        parts.append(f"step {_fmt(float(mean))}{spread} ms over {summary.get('steps')} steps")
    if isinstance(summary.get("input_percent"), (int, float)):
        verdict = str(summary.get("verdict") or "").replace("_", " ")
        parts.append(f"input {_fmt(float(summary['input_percent']))} % ({verdict})")
    if isinstance(summary.get("device_compute_percent"), (int, float)):
        parts.append(f"device compute {_fmt(float(summary['device_compute_percent']))} %")
    ops = summary.get("top_ops")
    if isinstance(ops, list) and ops and isinstance(ops[0], dict):
        top = ops[0]
        share = top.get("self_time_percent")
        share_text = f" ({_fmt(float(share))} % of self time)" if isinstance(share, float) else ""
        parts.append(f"top op {top.get('name') or top.get('type')}{share_text}")
    if isinstance(summary.get("peak_memory_bytes"), (int, float)):
        parts.append(f"peak memory {_bytes(summary['peak_memory_bytes'])}")
    tips = summary.get("suggestions")
    if isinstance(tips, list) and tips and isinstance(tips[0], dict) and tips[0].get("text"):
        parts.append(f"suggestion: {tips[0]['text']}")
    return "; ".join(parts) or "—"


def _column(values: Sequence[Any]) -> np.ndarray:
    """A job view's bucket column (None where empty) as floats (NaN where empty)."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)


def _job_article(view: Mapping[str, Any], anchor: str) -> str:
    """One distributed job (issue 11): its ranks, findings, and each metric across ranks."""
    ranks = view["ranks"]
    title = f"{view['world_size']} ranks on {view['node_count']} nodes"
    findings = "".join(
        f"<li>{_sev(f['severity'])} <strong>{_e(f['title'])}</strong>: {_e(f['text'])}</li>"
        for f in view["findings"]
    )
    rows = [
        [
            r["rank"],
            r["run"],
            r["host"],
            "yes" if r["samples_node"] else "",
            ", ".join(str(g) for g in r["gpus"]) or "—",
            _fmt(r["last_step"]),
            _when(r["last_step_wall_time_s"]),
        ]
        for r in ranks
    ]
    header = ["rank", "run", "host", "samples node", "GPUs", "last step", "logged at"]
    figures = []
    start, bucket_s = view["start_wall_time_s"], view["bucket_s"]
    if start is not None and bucket_s:
        for m in view["metrics"]:
            lo, med, hi = _column(m["min"]), _column(m["median"]), _column(m["max"])
            x = (np.arange(len(med)) + 0.5) * bucket_s
            lines = [Line("median of the ranks", x, med, color="#34495e")]
            worst = m["worst"]
            if worst is not None:
                row = next(i for i, r in enumerate(ranks) if r["run"] == worst["run"])
                worst_y = _column(m["values"][row])
                lines.append(Line(f"rank {worst['rank']} (worst)", x, worst_y, color="#c0392b"))
            figures.append(
                chart(
                    f"{m['title']}: min to max across ranks",
                    lines,
                    xlabel="seconds since the job's first point",
                    unit=m["unit"],
                    bands=[Band("min to max", x, lo, hi)],
                )
            )
    return (
        f'<article class="job" id="{anchor}"><h2>Job <bdi>{_e(view["job"])}</bdi> in '
        f"<bdi>{_e(view['folder'] or '(top level)')}</bdi></h2><p>{_e(title)}</p>"
        f"<h3>Findings</h3>"
        + (f"<ul>{findings}</ul>" if findings else _none("No finding across the ranks."))
        + "<h3>Ranks</h3>"
        + _table(rows, header)
        + "".join(figures)
        + "</article>"
    )


def _run_anchor(i: int) -> str:
    return f"run-{i}"


def render_html(
    data: LogdirData,
    runs: Sequence[str],
    *,
    progress: Progress | None = None,
    profile_wait_s: float = 30.0,
) -> str:
    """The report of `runs` as one self-contained HTML document."""
    entries = {r["run"]: r for r in data.runs()}
    cache = profiles_lib.SummaryCache()
    parts: list[str] = []
    toc: list[str] = []
    chosen = set(runs)
    for j, ((job, folder), members) in enumerate(sorted(data.reader.job_runs().items())):
        if not chosen & set(members):
            continue
        anchor = f"job-{j}"
        view = data.reader.job(job, folder, members, buckets=120)
        toc.append(f'<li><a href="#{anchor}">Job {_e(job)} ({len(members)} ranks)</a></li>')
        parts.append(_job_article(view, anchor))
    for i, run in enumerate(runs):
        anchor = _run_anchor(i)
        toc.append(f'<li><a href="#{anchor}">{_e(run)}</a></li>')
        entry = entries.get(run, {"run": run})
        series = data.reader.read(run)
        overview = data.reader.overview(run)
        walls = [float(s.wall_time[0]) for s in series.values() if len(s.wall_time)]
        t0 = min(walls) if walls else 0.0
        params = analytics.AnomalyParams()
        anomalies = analytics.detect_anomalies(series, params)
        findings = analytics.findings(series, params, anomalies)
        alerts = data.reader.alerts(run)["alerts"]
        prof_answer: dict[str, Any] | None = None
        prof_error: str | None = None
        try:
            prof_answer = data.reader.profiles(run, data.logdir, cache)
            if any(
                h.get("status") == profiles_lib.STATUS_PENDING
                for s in prof_answer["sessions"]
                for h in s["hosts"]
            ):
                cache.wait(profile_wait_s)
                prof_answer = data.reader.profiles(run, data.logdir, cache)
        except Exception as err:  # a broken capture must not cost the whole report
            prof_error = f"{type(err).__name__}: {err}"
        summaries = [s["summary"] for s in (prof_answer or {}).get("sessions", []) if s["summary"]]
        findings += analytics.optimization_findings(
            series,
            overview.get("facts"),
            data.reader.models(run),
            summaries[-1] if summaries else None,
        )
        findings.sort(key=lambda f: analytics.SEVERITIES.index(f.severity))
        sections = [
            ("facts", "Run facts", _facts_section(entry, overview)),
            ("system", "System", _system_section(series, t0)),
            ("training", "Training", _training_section(series)),
            ("inference", "Inference", _inference_section(series, t0)),
            ("alerts", "Alerts", _alerts_section(alerts)),
            ("anomalies", "Anomalies", _anomalies_section(anomalies)),
            ("findings", "Findings", _findings_section(findings)),
            ("profiles", "Profiles", _profiles_section(prof_answer, prof_error)),
        ]
        body = "".join(
            f'<section class="{key}" id="{anchor}-{key}"><h3>{title}</h3>{content}</section>'
            for key, title, content in sections
        )
        links = " · ".join(f'<a href="#{anchor}-{key}">{title}</a>' for key, title, _ in sections)
        parts.append(
            f'<article class="run" id="{anchor}"><h2>Run <bdi>{_e(run)}</bdi></h2>'
            f"<p>{links}</p>{body}</article>"
        )
        if progress is not None:
            progress.advance()
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = f"ttsmon report: {os.path.basename(os.path.abspath(data.logdir))}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>Log directory <code>{_e(data.logdir)}</code>, "
        f"{len(runs)} run(s); generated {_e(generated)} by ttsmon {_e(VERSION)}.</p>"
        f"<nav><ul>{''.join(toc)}</ul></nav></header>"
        f"<main>{''.join(parts)}</main></body></html>\n"
    )
