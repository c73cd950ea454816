"""Inference requests from a model's own log lines: ``ttsmon watch --parse indextts2`` (issue 12).

IndexTTS2 prints a timer block for every ``infer`` call::

    >> gpt_gen_time: 6.83 seconds
    >> gpt_forward_time: 0.37 seconds
    >> s2mel_time: 1.05 seconds
    >> bigvgan_time: 0.19 seconds
    >> Total inference time: 10.58 seconds
    >> Generated audio length: 4.59 seconds
    >> RTF: 2.3078

Each block is one request, and its RTF line ends it. A block becomes one
`RequestRecord`: the stages (``inference/stage/{stage}/latency_ms``), the
total as the latency, the audio length, the printed RTF, and the
``unattributed`` stage (the total less the stages it printed).

Parsers are data: `FAMILIES` maps a model family to a table of line
patterns, and adding a model's log format is one entry. A pattern names
what its number is (`Pattern.field`: a stage's name, or one of ``total``,
``audio``, ``rtf``) and its unit; users add their own with
``--parse-pattern NAME=REGEX`` (`user_pattern`). A malformed or partial block
records what it has, and nothing here ever raises into the watch.
"""

from __future__ import annotations

import dataclasses
import math
import re
import threading
from collections.abc import Callable, Sequence

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.inference import RequestRecord

# What a pattern's number is, other than a stage's latency.
TOTAL = "total"
AUDIO = "audio"
RTF = "rtf"
RESERVED = (TOTAL, AUDIO, RTF)
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"


@dataclasses.dataclass(frozen=True)
class Pattern:
    """One line pattern of a log format.

    Attributes:
      field: A stage's name (its latency), or ``total``, ``audio`` or ``rtf``.
      regex: Searched in each line; its first group is the number.
      unit_s: Seconds per unit of the number (1.0 for seconds, 0.001 for ms;
        unused for ``rtf``).
    """

    field: str
    regex: re.Pattern[str]
    unit_s: float = 1.0


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family's log format.

    Attributes:
      name: The ``--parse`` name.
      patterns: Its line patterns; a line matches the first that fits.
      marker: A substring every timer line holds: lines without it are
        skipped before any regex runs (most of a server's output).
      ends_block: The field whose line ends a block.
    """

    name: str
    patterns: tuple[Pattern, ...]
    marker: str = ""
    ends_block: str = RTF


def _seconds(label: str) -> re.Pattern[str]:
    # ">> gpt_gen_time: 6.83 seconds", also after a logger's prefix and with
    # padded spacing (IndexTTS 2.5: ">> gpt_gen_time:   26.80 seconds").
    return re.compile(rf">>\s*{label}\s*:\s*{_NUMBER}\s*(?:s|sec|secs|seconds)?\b")


FAMILIES: dict[str, Family] = {
    "indextts2": Family(
        name="indextts2",
        marker=">>",
        patterns=(
            Pattern("gpt_gen", _seconds("gpt_gen_time")),
            Pattern("gpt_forward", _seconds("gpt_forward_time")),
            Pattern("s2mel", _seconds("s2mel_time")),
            Pattern("bigvgan", _seconds("bigvgan_time")),
            # IndexTTS v1's fast path: ">> Total fast inference time: ...".
            Pattern(TOTAL, _seconds(r"Total (?:fast )?inference time")),
            Pattern(AUDIO, _seconds("Generated audio length")),
            # ">> RTF: 2.3078", v1 fast: ">> [fast] RTF: 0.31".
            Pattern(RTF, re.compile(rf">>\s*(?:\[fast\]\s*)?RTF\s*:\s*{_NUMBER}")),
        ),
    ),
}


def user_pattern(spec: str) -> Pattern:
    """A pattern from ``NAME=REGEX`` (``--parse-pattern``).

    NAME is a stage name, or ``total``, ``audio`` or ``rtf``; a ``_ms``
    suffix on a stage name or ``total`` reads the number as milliseconds
    (``vocoder_ms=vocoder took (\\d+) ms``). REGEX's first group is the number.

    Raises:
      ValueError: no ``=``, a bad name, a regex that does not compile or has
        no group.
    """
    name, sep, regex = spec.partition("=")
    name = name.strip()
    if not sep or not name or not regex:
        raise ValueError(f"a parse pattern is NAME=REGEX, got {spec!r}")
    unit_s = 1.0
    if name.endswith("_ms") and name != "_ms":
        name, unit_s = name[:-3], 0.001
    if name == RTF and unit_s != 1.0:
        raise ValueError("rtf has no unit: use rtf=REGEX")
    if name not in RESERVED:
        metadata.check_name(name, "stage name in a parse pattern")
    try:
        compiled = re.compile(regex)
    except re.error as err:
        raise ValueError(f"parse pattern {name}: bad regular expression ({err})") from None
    if compiled.groups < 1:
        raise ValueError(f"parse pattern {name}: the regex needs a group around the number")
    return Pattern(name, compiled, unit_s)


def make_family(name: str | None, extra: Sequence[Pattern] = ()) -> Family:
    """The family `name` with the user's patterns first (they win on a line both match).

    Without `name`, the user's patterns alone: their block ends at ``rtf`` if
    one is given, else at ``total``.

    Raises:
      ValueError: an unknown family, or neither a family nor a pattern.
    """
    if name is not None and name not in FAMILIES:
        raise ValueError(f"unknown log format {name!r}; known: {', '.join(sorted(FAMILIES))}")
    if name is None and not extra:
        raise ValueError("give a log format (--parse) or patterns (--parse-pattern)")
    if name is None:
        ends = RTF if any(p.field == RTF for p in extra) else TOTAL
        return Family("custom", tuple(extra), marker="", ends_block=ends)
    base = FAMILIES[name]
    if not extra:
        return base
    # A user pattern need not hold the family's marker: no prefilter then.
    return dataclasses.replace(base, patterns=(*extra, *base.patterns), marker="")


class BlockParser:
    """Turns log lines into requests, one block at a time (thread-safe per caller: one feeder).

    Args:
      family: The log format.
      emit: Called with each finished block's `RequestRecord`.
      on_error: Called with a message for a block that could not be
        recorded (it never raises into the caller).
    """

    def __init__(
        self,
        family: Family,
        emit: Callable[[RequestRecord], None],
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.family = family
        self._emit = emit
        self._on_error = on_error
        self._marker = family.marker
        self._patterns = family.patterns
        self._ends = family.ends_block
        self._block: dict[str, float] = {}
        self.lines = 0
        self.requests = 0
        self.partial = 0

    def feed(self, line: str) -> None:
        """One line of output (without its line break).

        A line may hold several numbers ("done in 1.50 s, rtf=0.42"): every
        pattern that fits counts, the first for each field, and the field
        that ends a block is taken last.
        """
        self.lines += 1
        if self._marker and self._marker not in line:
            return
        found: dict[str, float] = {}
        for p in self._patterns:
            if p.field in found:
                continue
            m = p.regex.search(line)
            if m is None:
                continue
            try:
                value = float(m.group(1))
            except (TypeError, ValueError, IndexError):
                continue  # a match without a number: not this timer after all
            if not math.isfinite(value):
                continue  # "1e999999 seconds" is a broken line, not a request
            if p.field == AUDIO:
                value *= p.unit_s  # audio stays in seconds
            elif p.field != RTF:
                value *= p.unit_s * 1000.0  # latencies in ms
            found[p.field] = value
        ends = found.pop(self._ends, None)
        for field, value in found.items():
            if field in self._block:
                # A field seen twice: the previous block never printed its end.
                self._finish(partial=True)
            self._block[field] = value
        if ends is not None:
            self._block[self._ends] = ends
            self._finish(partial=False)

    def close(self) -> None:
        """Records what is left of an unfinished block (the program ended mid-block)."""
        if self._block:
            self._finish(partial=True)

    def _finish(self, partial: bool) -> None:
        block, self._block = self._block, {}
        record = record_of(block)
        if record is None:
            if self._on_error is not None:
                fields = ", ".join(sorted(block)) or "nothing"
                self._on_error(f"a timer block without a total, audio length or stage ({fields})")
            return
        self.partial += partial or not {TOTAL, RTF} <= set(block)
        self.requests += 1
        self._emit(record)


def record_of(block: dict[str, float]) -> RequestRecord | None:
    """The request of one parsed block; None when it holds no usable number.

    The latency is the printed total, else the printed RTF times the audio
    length (IndexTTS computes its RTF so), else the sum of the stages. The
    RTF is the printed one, as IndexTTS2 measured it.
    """
    stages = {k: v for k, v in block.items() if k not in RESERVED and v >= 0}
    audio_s = block.get(AUDIO)
    rtf = block.get(RTF)
    latency = block.get(TOTAL)
    if latency is None and rtf is not None and audio_s is not None:
        latency = rtf * audio_s * 1000.0
    if latency is None and stages:
        latency = sum(stages.values())
    if latency is None or latency < 0:
        return None
    return RequestRecord(
        latency_ms=latency,
        audio_s=audio_s if audio_s is not None and audio_s >= 0 else None,
        stages=stages,
        rtf=rtf if rtf is not None and rtf >= 0 else None,
    )


class RequestSink:
    """Where parsed requests go: held until the recorder is ready, then passed on.

    ``ttsmon watch`` reads the program's output from its first byte, before
    its Monitor exists; requests parsed meanwhile wait here (in order).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._target: Callable[[RequestRecord], None] | None = None
        self._held: list[RequestRecord] = []

    def __call__(self, record: RequestRecord) -> None:
        with self._lock:
            if self._target is None:
                self._held.append(record)
                return
            target = self._target
        target(record)

    def connect(self, target: Callable[[RequestRecord], None]) -> None:
        """Passes the held requests to `target`, and every later one."""
        with self._lock:
            held, self._held = self._held, []
            for record in held:
                target(record)
            self._target = target
