"""Threshold alerts, evaluated online as values are logged or sampled.

A rule watches one tag (or a pattern such as ``gpu/{gpu}/temperature_c``).
When its condition has held for `for_seconds`, it *fires*: an ``alerts/events``
document is written to the run, one line is logged (WARNING, or ERROR for
critical rules) and the optional ``on_alert`` callback runs on a thread of
its own (a slow chat webhook never holds up training). When the condition
stops holding, the return to normal is recorded too. A rule that would fire
again within `cooldown_s` of its last firing is held back (and so is the
recovery of that episode); if its condition still holds when the cooldown
ends, it fires then.

Cost: a dict lookup per logged value (rules are indexed by tag, patterns
resolved once per new tag), O(1) arithmetic per watched value.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.faults import FaultLog, logger
from tb_plugin_ttsmon.units import format_amount

OPS = (">", ">=", "<", "<=", "non_finite", "trend")
SEVERITIES = ("info", "warning", "critical")

# A derived value, not a written series: 1 while a GPU's clocks are held back
# for heat or power while it is busy (utilization at or above this).
THROTTLE_BUSY_TAG = "gpu/{gpu}/throttle_while_busy"
THROTTLE_BUSY_UTILIZATION_PERCENT = 80.0

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    "non_finite": lambda v, t: not math.isfinite(v),
}


@dataclasses.dataclass(frozen=True)
class Alert:
    """An alert rule.

    Args:
      tag: The tag to watch, or a pattern with ``{gpu}``, ``{core}``,
        ``{layer}``, ... placeholders (each matches one or more tag
        components).
      op: ``>``, ``>=``, ``<``, ``<=``; ``non_finite`` (NaN or Inf, no
        threshold); or ``trend`` (a steady rise: over the last `for_seconds`
        the values fit a rising line, R² >= 0.9, and rose by more than
        `threshold` percent).
      threshold: The value compared with (percent rise for ``trend``).
      for_seconds: How long the condition must hold before the rule fires
        (for ``trend``: the window the trend is fitted over).
      severity: ``info``, ``warning`` or ``critical``.
      cooldown_s: A rule that fired is held back for this long after; a
        condition that still holds when it ends fires then.
      name: A short id for the rule (default: built from tag, op, threshold).

    Raises:
      ValueError, TypeError: an argument is invalid.
    """

    tag: str
    op: str
    threshold: float = 0.0
    for_seconds: float = 0.0
    severity: str = "warning"
    cooldown_s: float = 300.0
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tag, str) or not self.tag:
            raise TypeError("Alert tag must be a non-empty string")
        metadata.check_tag(re.sub(r"\{[a-z]+\}", "x", self.tag))
        if self.op not in OPS:
            raise ValueError(f"Alert op must be one of {', '.join(OPS)}, not {self.op!r}")
        for field in ("threshold", "for_seconds", "cooldown_s"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"Alert {field} must be a number, not {type(value).__name__}")
            if field != "threshold" and not value >= 0:
                raise ValueError(f"Alert {field} must be >= 0, got {value!r}")
        if self.op != "non_finite" and not math.isfinite(self.threshold):
            raise ValueError(f"Alert threshold must be finite, got {self.threshold!r}")
        if self.op == "trend" and self.for_seconds <= 0:
            raise ValueError("a trend Alert needs for_seconds > 0 (the window it is fitted over)")
        if self.severity not in SEVERITIES:
            raise ValueError(f"Alert severity must be one of {', '.join(SEVERITIES)}")

    @property
    def rule(self) -> str:
        """The rule's name."""
        if self.name:
            return self.name
        if self.op == "non_finite":
            return f"{self.tag} non-finite"
        return f"{self.tag} {self.op} {self.threshold:g}"


@dataclasses.dataclass(frozen=True)
class AlertEvent:
    """What `on_alert` receives (and what the ``alerts/events`` document holds)."""

    wall_time_s: float
    training_step: int | None
    rule: str
    tag: str
    op: str
    threshold: float
    value: float
    for_s: float
    severity: str
    state: str  # "firing" or "resolved"
    message: str

    def to_document(self) -> dict[str, Any]:
        """The JSON document written to the run."""
        return dataclasses.asdict(self)


DEFAULT_ALERTS: tuple[Alert, ...] = (
    Alert("train/loss", "non_finite", severity="critical", cooldown_s=60, name="loss_not_finite"),
    Alert(
        "train/gradient_norm",
        "non_finite",
        severity="critical",
        cooldown_s=60,
        name="gradient_norm_not_finite",
    ),
    Alert("gpu/{gpu}/memory_used_percent", ">", 95.0, for_seconds=30, name="gpu_memory_high"),
    Alert("gpu/{gpu}/temperature_c", ">=", 85.0, name="gpu_temperature_high"),
    Alert(THROTTLE_BUSY_TAG, ">=", 1.0, for_seconds=5, name="gpu_throttled_while_busy"),
    Alert("system/memory_percent", ">", 95.0, for_seconds=10, name="host_memory_high"),
    # A steady rise of 20 % or more over 10 minutes that fits a line well.
    Alert("process/rss_bytes", "trend", 20.0, for_seconds=600, name="rss_leak_trend"),
    Alert("system/logdir_disk_used_percent", ">", 95.0, name="logdir_disk_full"),
)


class _Trend:
    """Least squares over a sliding time window, O(1) per point (running sums)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.points: deque[tuple[float, float]] = deque()
        self.sums = [0.0] * 5  # t, y, tt, ty, yy (t relative to t0)
        self.t0: float | None = None

    def _add(self, t: float, y: float, sign: float) -> None:
        s = self.sums
        s[0] += sign * t
        s[1] += sign * y
        s[2] += sign * t * t
        s[3] += sign * t * y
        s[4] += sign * y * y

    def add(self, wall_s: float, y: float) -> tuple[bool, float]:
        """Adds a point; returns (window full, rise in percent if a good rising fit else 0)."""
        if not math.isfinite(y):
            return False, 0.0
        if self.t0 is None:
            self.t0 = wall_s
        t = wall_s - self.t0
        self.points.append((t, y))
        self._add(t, y, 1.0)
        while self.points and t - self.points[0][0] > self.window_s:
            old_t, old_y = self.points.popleft()
            self._add(old_t, old_y, -1.0)
        n = len(self.points)
        full = n >= 10 and t - self.points[0][0] >= 0.9 * self.window_s
        if not full:
            return False, 0.0
        st, sy, stt, sty, syy = self.sums
        var_t = stt - st * st / n
        var_y = syy - sy * sy / n
        cov = sty - st * sy / n
        if var_t <= 0 or var_y <= 0:
            return True, 0.0
        slope = cov / var_t
        r2 = cov * cov / (var_t * var_y)
        first_y = self.points[0][1]
        if slope <= 0 or r2 < 0.9 or first_y <= 0:
            return True, 0.0
        rise = slope * (t - self.points[0][0])
        return True, 100.0 * rise / first_y


@dataclasses.dataclass
class _State:
    """One rule on one tag."""

    pending_since: float | None = None
    firing: bool = False
    fired_at: float | None = None
    trend: _Trend | None = None


class AlertEngine:
    """Evaluates rules on values as they are written.

    Args:
      rules: The rules.
      write: Writes one alert document (wall time, document); called outside
        the engine's lock.
      on_alert: Called with each `AlertEvent`, on the engine's own thread.
      faults: Where a failing callback is reported (once).
      react: Called with each event right away, on the thread that logged the
        value (for cheap, internal reactions such as arming a profile capture).
    """

    def __init__(
        self,
        rules: Sequence[Alert],
        write: Callable[[float, dict[str, Any]], None],
        on_alert: Callable[[AlertEvent], Any] | None,
        faults: FaultLog,
        react: Callable[[AlertEvent], Any] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self._react = react
        self._write = write
        self._on_alert = on_alert
        self._faults = faults
        self._lock = threading.Lock()
        self._exact: dict[str, list[Alert]] = {}
        self._patterns: list[tuple[re.Pattern[str], Alert]] = []
        for rule in self.rules:
            if "{" in rule.tag:
                self._patterns.append((_pattern(rule.tag), rule))
            else:
                self._exact.setdefault(rule.tag, []).append(rule)
        self._by_tag: dict[str, tuple[Alert, ...]] = {}
        self._states: dict[tuple[str, str], _State] = {}
        self._derive_throttle = any(r.tag == THROTTLE_BUSY_TAG for r in self.rules)
        self._callbacks: queue.SimpleQueue[AlertEvent | None] | None = None
        self._thread: threading.Thread | None = None
        self.events: list[AlertEvent] = []  # every event, for tests and `Monitor.alerts`

    def _rules_for(self, tag: str) -> tuple[Alert, ...]:
        rules = self._by_tag.get(tag)
        if rules is None:
            found = list(self._exact.get(tag, ()))
            found += [rule for regex, rule in self._patterns if regex.fullmatch(tag)]
            rules = self._by_tag[tag] = tuple(found)
        return rules

    def observe(
        self,
        values: Mapping[str, float],
        wall_s: float,
        training_step: int | None,
        sampled: bool = True,
    ) -> None:
        """Checks `values` (tag -> value) logged at `wall_s` against the rules.

        `sampled`: the values are a system sample (GPU throttling is derived
        from those only). Events without a rule on any of their tags (most
        requests and steps) cost a dictionary lookup per tag.
        """
        if not self.rules or not values:
            return
        by_tag = self._by_tag
        if not sampled and all(by_tag.get(tag) == () for tag in values):
            return
        events: list[AlertEvent] = []
        with self._lock:
            for tag, value in values.items():
                rules = self._rules_for(tag)
                for rule in rules:
                    self._check(rule, tag, value, wall_s, training_step, events)
            if sampled and self._derive_throttle:
                for tag, value in _throttle_while_busy(values):
                    for rule in self._rules_for(tag):
                        self._check(rule, tag, value, wall_s, training_step, events)
        for event in events:
            self._publish(event)

    def _check(
        self,
        rule: Alert,
        tag: str,
        value: float,
        wall_s: float,
        training_step: int | None,
        events: list[AlertEvent],
    ) -> None:
        key = (rule.rule, tag)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        if rule.op == "trend":
            if state.trend is None:
                state.trend = _Trend(rule.for_seconds)
            _, rise = state.trend.add(wall_s, value)
            holds = rise > rule.threshold
            shown = rise
        else:
            holds = _COMPARE[rule.op](value, rule.threshold)
            shown = value
        if holds:
            if state.pending_since is None:
                state.pending_since = wall_s
            due = rule.op == "trend" or wall_s - state.pending_since >= rule.for_seconds
            if due and not state.firing:
                # Held back while the last firing is recent, and checked
                # again on every value: a relapse that still holds when the
                # cooldown ends fires then, however long it lasts.
                if state.fired_at is not None and wall_s - state.fired_at < rule.cooldown_s:
                    return
                state.firing = True
                state.fired_at = wall_s
                events.append(self._event(rule, tag, shown, wall_s, training_step, "firing"))
            return
        state.pending_since = None
        if state.firing:
            state.firing = False
            since = wall_s - (state.fired_at or wall_s)
            events.append(self._event(rule, tag, shown, wall_s, training_step, "resolved", since))

    def _event(
        self,
        rule: Alert,
        tag: str,
        value: float,
        wall_s: float,
        training_step: int | None,
        state: str,
        since_s: float = 0.0,
    ) -> AlertEvent:
        unit = metadata.spec_for_tag(tag).unit
        where = f" at step {training_step}" if training_step is not None else ""
        if rule.op == "non_finite":
            text = (
                f"{tag} is {_fmt(value, unit)}{where}"
                if state == "firing"
                else f"{tag} is finite again ({_fmt(value, unit)}){where}"
            )
        elif rule.op == "trend":
            text = (
                f"{tag} rose {value:.0f} % in {rule.for_seconds:g} s along a steady line "
                f"(more than {rule.threshold:g} %): a leak?"
                if state == "firing"
                else f"{tag} stopped rising steadily after {since_s:.0f} s"
            )
        elif state == "firing":
            held = f" for {rule.for_seconds:g} s" if rule.for_seconds else ""
            text = f"{tag} {_fmt(value, unit)} {rule.op} {_fmt(rule.threshold, unit)}{held}{where}"
        else:
            text = (
                f"{tag} back to {_fmt(value, unit)} (threshold {rule.op} "
                f"{_fmt(rule.threshold, unit)}) after {since_s:.0f} s"
            )
        return AlertEvent(
            wall_time_s=wall_s,
            training_step=training_step,
            rule=rule.rule,
            tag=tag,
            op=rule.op,
            threshold=float(rule.threshold),
            value=float(value),
            for_s=float(rule.for_seconds),
            severity=rule.severity,
            state=state,
            message=text,
        )

    def _publish(self, event: AlertEvent) -> None:
        self.events.append(event)
        if event.state == "firing":
            level = logging.ERROR if event.severity == "critical" else logging.WARNING
            if event.severity == "info":
                level = logging.INFO
        else:
            level = logging.INFO
        logger.log(level, "ttsmon alert [%s] %s: %s", event.severity, event.rule, event.message)
        try:
            self._write(event.wall_time_s, event.to_document())
        except Exception as err:
            self._faults.warn_once("alerts:write", "writing an alert failed (%s)", err)
        if self._react is not None:
            try:
                self._react(event)
            except Exception as err:
                self._faults.warn_once("alerts:react", "reacting to an alert failed (%s)", err)
        if self._on_alert is not None:
            if self._callbacks is None:
                self._callbacks = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._run_callbacks, name="ttsmon-alerts", daemon=True
                )
                self._thread.start()
            self._callbacks.put(event)

    def _run_callbacks(self) -> None:
        assert self._callbacks is not None and self._on_alert is not None
        while True:
            event = self._callbacks.get()
            if event is None:
                return
            try:
                self._on_alert(event)
            except Exception as err:  # the user's callback: report, never propagate
                self._faults.warn_once(
                    "alerts:callback",
                    "on_alert raised %s: %s (later errors are not logged)",
                    type(err).__name__,
                    err,
                )

    def close(self, timeout_s: float = 5.0) -> None:
        """Lets queued callbacks run (up to `timeout_s`), then stops their thread."""
        if self._callbacks is not None and self._thread is not None:
            self._callbacks.put(None)
            self._thread.join(timeout_s)


def _pattern(tag: str) -> re.Pattern[str]:
    out = re.escape(tag)
    out = re.sub(r"\\\{[a-z]+\\\}", r"[A-Za-z0-9_.\\-]+(?:/[A-Za-z0-9_.\\-]+)*", out)
    return re.compile(out)


def _throttle_while_busy(values: Mapping[str, float]) -> Iterable[tuple[str, float]]:
    """(gpu/{i}/throttle_while_busy, 0 or 1) for each GPU in a sample."""
    for tag, util in values.items():
        if tag.startswith("gpu/") and tag.endswith("/utilization_percent"):
            base = tag[: -len("utilization_percent")]
            thermal = values.get(base + "throttle_thermal", 0.0)
            power = values.get(base + "throttle_power", 0.0)
            busy = util >= THROTTLE_BUSY_UTILIZATION_PERCENT
            yield base + "throttle_while_busy", 1.0 if busy and (thermal or power) else 0.0


def _fmt(value: float, unit: str) -> str:
    """`value` with its unit, as every ttsmon text says it (bytes in KiB, MiB, GiB)."""
    return format_amount(value, unit)
