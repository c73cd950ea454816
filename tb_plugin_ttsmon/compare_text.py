"""`ttsmon compare`'s text: the comparison answer (`Reader.compare`) as a terminal report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tb_plugin_ttsmon.units import format_bytes


def _ms(x: Any) -> str:
    return "–" if x is None else f"{x:.2f} ms" if x < 100 else f"{x:.0f} ms"


def _num(x: Any, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _percent(x: Any) -> str:
    return "–" if x is None else f"{x:.0f} %"


def _bytes(x: Any) -> str:
    return "–" if x is None else format_bytes(x)


def _pct_change(change: Mapping[str, Any] | None, key: str) -> str:
    value = (change or {}).get(key)
    return "" if value is None else f"{value * 100:+.0f} %"


def _get(entry: Mapping[str, Any] | None, side: str, key: str) -> Any:
    part = (entry or {}).get(side) or {}
    return part.get(key)


def render(answer: Mapping[str, Any]) -> str:
    """The verdict, the setup differences (A → B), then the performance table."""
    a, b = answer["a"], answer["b"]
    lines = [f"ttsmon compare: {b} (B) against {a} (A)", "", answer["verdict"], ""]
    setup = answer.get("setup") or []
    lines.append(f"Setup differences ({len(setup)}):" if setup else "Setup: no recorded difference")
    width = max((len(d["label"]) for d in setup), default=0)
    for d in setup:
        lines.append(f"  {d['label']:<{width}}  {_show(d['a'])} → {_show(d['b'])}")
    perf = answer["performance"]
    speed = perf["step_time_ms"]
    rows: list[tuple[str, str, str, str]] = []
    if speed.get("a") or speed.get("b"):
        ratio = ""
        if speed.get("speedup") is not None:
            lo, hi = speed["ci"]
            ratio = f"{speed['speedup']:.2f}× speed (95 % CI {lo:.2f}–{hi:.2f})"
        rows.append(
            (
                "time per step, median",
                _ms(_get(speed, "a", "median")),
                _ms(_get(speed, "b", "median")),
                ratio,
            )
        )
        mean = speed.get("mean_speedup")
        rows.append(
            (
                "time per step, mean",
                _ms(_get(speed, "a", "mean")),
                _ms(_get(speed, "b", "mean")),
                "" if mean is None else f"{mean:.2f}× speed",
            )
        )
        rows.append(
            (
                "warm-up (compiling, caches)",
                _secs(_get(speed, "a", "warmup_s")),
                _secs(_get(speed, "b", "warmup_s")),
                "",
            )
        )
        rows.append(
            (
                "steps/s",
                _num(_get(speed, "a", "steps_per_s")),
                _num(_get(speed, "b", "steps_per_s")),
                "",
            )
        )
        rows.append(
            (
                "steps timed (warm-up left out)",
                _count(speed.get("a")),
                _count(speed.get("b")),
                "",
            )
        )
    inference = perf.get("inference") or {}
    for entry, name, fmt, stats in (
        (perf.get("gpu_memory_bytes"), "GPU memory", _bytes, ("peak", "median")),
        (perf.get("host_memory_bytes"), "host memory", _bytes, ("peak", "median")),
        (perf.get("gpu_utilization_percent"), "GPU utilization", _percent, ("median",)),
        (inference.get("latency_ms"), "request latency", _ms, ("p50", "p95")),
        (inference.get("rtf"), "RTF", _num, ("p50", "p95")),
    ):
        if entry and (entry.get("a") or entry.get("b")):
            rows += [
                (
                    f"{name}, {stat}",
                    fmt(_get(entry, "a", stat)),
                    fmt(_get(entry, "b", stat)),
                    _pct_change(entry.get("change"), stat),
                )
                for stat in stats
            ]
    ttl = perf.get("time_to_loss")
    if ttl:
        rows.append(
            (
                f"time to {ttl['tag']} ≤ {ttl['target']:.4g}",
                _secs(ttl.get("a_s")),
                _secs(ttl.get("b_s")),
                "" if ttl.get("change") is None else f"{ttl['change'] * 100:+.0f} %",
            )
        )
    if rows:
        lines += ["", "Performance:"]
        header = ("", "A", "B", "B against A")
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for r in [header, *rows]:
            lines.append(
                f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip()
            )
    return "\n".join(lines) + "\n"


def _count(side: Mapping[str, Any] | None) -> str:
    if not side:
        return "–"
    return f"{side['intervals']} (+{side['warmup_intervals']})"


def _secs(x: Any) -> str:
    return "–" if x is None else f"{x:.1f} s"


def _show(v: Any) -> str:
    if v is None:
        return "unset"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
