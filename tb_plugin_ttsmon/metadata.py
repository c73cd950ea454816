"""The ttsmon event format: the one contract between the recorder and the plugin.

Everything that ttsmon writes is an ordinary TensorBoard summary value whose
``SummaryMetadata.plugin_data.plugin_name`` is ``"ttsmon"``. This module owns
every detail of that format (tags, units, kinds, payload, data class, dtype,
step scheme); ``docs/format.md`` is its prose twin. The recorder writes through
the helpers here and the plugin reads through them, so neither side spells out
the format on its own.

Two value shapes exist:

* **Series** (almost everything): ``data_class = DATA_CLASS_SCALAR`` and a
  rank-0 ``DT_FLOAT`` tensor. TensorBoard's Rust loader (``--load_fast=true``)
  silently drops scalars of any other dtype and summaries without a data class,
  and the Python loader turns ``simple_value`` into the built-in scalars
  plugin's data, so neither is ever used.
* **Documents** (run facts, model facts): ``data_class = DATA_CLASS_TENSOR`` and
  a rank-0 ``DT_STRING`` tensor holding UTF-8 JSON.

This module imports only protobuf classes, never TensorFlow.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from typing import Any

from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

PLUGIN_NAME = "ttsmon"

# Version of the JSON payload stored in `plugin_data.content`. Readers accept
# any version: unknown fields are ignored and missing ones take defaults.
PAYLOAD_VERSION = 1

# Tags of the JSON documents.
RUN_FACTS_TAG = "run/facts"
MODEL_FACTS_TAG = "model/facts"
ALERTS_TAG = "alerts/events"
PROFILE_TAG = "profile/sessions"

# Units, as shown to people. Byte values are raw bytes; the frontend scales them.
UNIT_PERCENT = "%"
UNIT_BYTES = "B"
UNIT_BYTES_PER_S = "B/s"
UNIT_CELSIUS = "°C"
UNIT_WATTS = "W"
UNIT_MHZ = "MHz"
UNIT_MS = "ms"
UNIT_S = "s"
UNIT_PER_S = "1/s"
UNIT_STEPS_PER_S = "steps/s"
UNIT_REQUESTS_PER_S = "requests/s"
UNIT_AUDIO_S_PER_S = "audio s/s"
UNIT_CORES = "cores"
UNIT_COUNT = "count"
UNIT_STEP = "step"
UNIT_BOOL = "bool"
UNIT_BITMASK = "bitmask"
UNIT_NONE = ""  # dimensionless: loss, learning rate, RTF, norms

# Kinds say how a value relates to time.
KIND_GAUGE = "gauge"  # a level at the sampling instant (memory used, temperature)
KIND_RATE = "rate"  # an average over the interval since the previous sample
KIND_EVENT = "event"  # one value per logged event (a step's loss, a request's latency)
KIND_WINDOW = "window"  # a statistic over a trailing window (p95 latency of the last 10 s)
KIND_DOCUMENT = "document"  # a JSON document (run facts, model facts)

KINDS = frozenset({KIND_GAUGE, KIND_RATE, KIND_EVENT, KIND_WINDOW, KIND_DOCUMENT})


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One row of the metric table.

    Attributes:
      pattern: The tag, with placeholders ``{gpu}`` and ``{core}`` (a decimal
        index), ``{layer}``, ``{stage}`` and ``{name}`` (one or more tag
        components).
      unit: One of the ``UNIT_*`` strings.
      kind: One of the ``KIND_*`` strings.
      description: One line for people, shown as the chart's title tooltip.
    """

    pattern: str
    unit: str
    kind: str
    description: str


_G, _R, _E, _W = KIND_GAUGE, KIND_RATE, KIND_EVENT, KIND_WINDOW

# The complete tag scheme. Adding a metric is one row here plus a line in
# docs/format.md; tests check that the two agree.
METRICS: tuple[MetricSpec, ...] = (
    # Host, sampled by psutil.
    MetricSpec(
        "system/cpu_percent", UNIT_PERCENT, _R, "CPU utilization, all cores (100 = every core busy)"
    ),
    MetricSpec(
        "system/cpu_core/{core}/utilization_percent",
        UNIT_PERCENT,
        _R,
        "CPU utilization of one core",
    ),
    MetricSpec("system/load_avg_1m", UNIT_NONE, _G, "Load average over 1 minute (runnable tasks)"),
    MetricSpec("system/load_avg_5m", UNIT_NONE, _G, "Load average over 5 minutes (runnable tasks)"),
    MetricSpec(
        "system/load_avg_15m", UNIT_NONE, _G, "Load average over 15 minutes (runnable tasks)"
    ),
    MetricSpec(
        "system/memory_used_bytes", UNIT_BYTES, _G, "Host memory in use (total minus available)"
    ),
    MetricSpec(
        "system/memory_available_bytes", UNIT_BYTES, _G, "Host memory available without swapping"
    ),
    MetricSpec("system/memory_percent", UNIT_PERCENT, _G, "Host memory in use, percent of total"),
    MetricSpec("system/swap_used_bytes", UNIT_BYTES, _G, "Swap in use"),
    MetricSpec("system/swap_percent", UNIT_PERCENT, _G, "Swap in use, percent of total swap"),
    MetricSpec("system/disk_read_bytes_per_s", UNIT_BYTES_PER_S, _R, "Disk reads, all disks"),
    MetricSpec("system/disk_write_bytes_per_s", UNIT_BYTES_PER_S, _R, "Disk writes, all disks"),
    MetricSpec(
        "system/net_recv_bytes_per_s",
        UNIT_BYTES_PER_S,
        _R,
        "Network bytes received, all interfaces",
    ),
    MetricSpec(
        "system/net_sent_bytes_per_s", UNIT_BYTES_PER_S, _R, "Network bytes sent, all interfaces"
    ),
    MetricSpec(
        "system/logdir_disk_free_bytes",
        UNIT_BYTES,
        _G,
        "Free space on the log directory's filesystem",
    ),
    MetricSpec(
        "system/logdir_disk_used_percent",
        UNIT_PERCENT,
        _G,
        "Used space on the log directory's filesystem",
    ),
    # The monitored process and its descendants (data-loader workers, ...).
    MetricSpec("process/cpu_percent", UNIT_PERCENT, _R, "CPU of the process tree (100 = one core)"),
    MetricSpec("process/rss_bytes", UNIT_BYTES, _G, "Resident memory of the process tree"),
    MetricSpec("process/thread_count", UNIT_COUNT, _G, "Threads in the process tree"),
    MetricSpec(
        "process/child_count", UNIT_COUNT, _G, "Descendant processes of the monitored process"
    ),
    # Container (cgroup v2, or v1) limits; written only where a limit is set.
    MetricSpec("container/cpu_limit_cores", UNIT_CORES, _G, "CPU quota of the container"),
    MetricSpec("container/cpu_usage_cores", UNIT_CORES, _R, "CPU used by the container"),
    MetricSpec(
        "container/cpu_percent_of_limit",
        UNIT_PERCENT,
        _R,
        "CPU used by the container, percent of its quota",
    ),
    MetricSpec("container/memory_limit_bytes", UNIT_BYTES, _G, "Memory limit of the container"),
    MetricSpec("container/memory_used_bytes", UNIT_BYTES, _G, "Memory charged to the container"),
    MetricSpec(
        "container/memory_percent_of_limit",
        UNIT_PERCENT,
        _G,
        "Memory charged, percent of the limit",
    ),
    # GPUs, through NVML. {gpu} is NVML's device index (as nvidia-smi shows it).
    MetricSpec(
        "gpu/{gpu}/utilization_percent", UNIT_PERCENT, _R, "Time a kernel ran on the GPU (NVML)"
    ),
    MetricSpec(
        "gpu/{gpu}/memory_utilization_percent",
        UNIT_PERCENT,
        _R,
        "Time the memory controller was busy",
    ),
    MetricSpec("gpu/{gpu}/memory_used_bytes", UNIT_BYTES, _G, "GPU memory in use, all processes"),
    MetricSpec("gpu/{gpu}/memory_total_bytes", UNIT_BYTES, _G, "GPU memory, total"),
    MetricSpec(
        "gpu/{gpu}/memory_used_percent", UNIT_PERCENT, _G, "GPU memory in use, percent of total"
    ),
    MetricSpec(
        "gpu/{gpu}/process_memory_used_bytes", UNIT_BYTES, _G, "GPU memory used by the process tree"
    ),
    MetricSpec("gpu/{gpu}/temperature_c", UNIT_CELSIUS, _G, "GPU core temperature"),
    MetricSpec("gpu/{gpu}/power_w", UNIT_WATTS, _G, "GPU power draw"),
    MetricSpec("gpu/{gpu}/power_limit_w", UNIT_WATTS, _G, "GPU enforced power limit"),
    MetricSpec("gpu/{gpu}/sm_clock_mhz", UNIT_MHZ, _G, "GPU SM clock"),
    MetricSpec("gpu/{gpu}/memory_clock_mhz", UNIT_MHZ, _G, "GPU memory clock"),
    MetricSpec(
        "gpu/{gpu}/throttle_reasons_bitmask",
        UNIT_BITMASK,
        _G,
        "NVML clock event reasons, as a bitmask",
    ),
    MetricSpec("gpu/{gpu}/throttle_thermal", UNIT_BOOL, _G, "1 while a thermal slowdown is active"),
    MetricSpec(
        "gpu/{gpu}/throttle_power", UNIT_BOOL, _G, "1 while a power cap or power brake is active"
    ),
    # TensorFlow's own allocator, per logical GPU.
    MetricSpec(
        "tf/gpu/{gpu}/memory_current_bytes", UNIT_BYTES, _G, "Memory held by TensorFlow's allocator"
    ),
    MetricSpec(
        "tf/gpu/{gpu}/memory_peak_bytes", UNIT_BYTES, _G, "Peak memory of TensorFlow's allocator"
    ),
    # The sampler itself.
    MetricSpec(
        "sampler/training_step", UNIT_STEP, _G, "Latest training step logged before this sample"
    ),
    MetricSpec("sampler/duration_ms", UNIT_MS, _G, "Time taken to take this sample"),
    MetricSpec(
        "sampler/skipped_ticks_count", UNIT_COUNT, _G, "Ticks skipped because a sample ran late"
    ),
    # Training, logged by the training code at its own steps.
    MetricSpec("train/loss", UNIT_NONE, _E, "Training loss"),
    MetricSpec("train/accuracy", UNIT_NONE, _E, "Training accuracy"),
    MetricSpec("train/learning_rate", UNIT_NONE, _E, "Learning rate"),
    MetricSpec("train/gradient_norm", UNIT_NONE, _E, "Global gradient norm (L2, all variables)"),
    MetricSpec(
        "train/steps_per_s",
        UNIT_STEPS_PER_S,
        _R,
        "Training steps per second since the previous log",
    ),
    # Phases of a step, from `Monitor.step()`: in DDP a fast rank waits inside
    # its step (collectives) for the slowest, so the straggler is the rank with
    # the most time *between* steps.
    MetricSpec("train/step_time_ms", UNIT_MS, _E, "Time inside the training step (Monitor.step)"),
    MetricSpec(
        "train/data_time_ms",
        UNIT_MS,
        _E,
        "Time between the previous step's end and this step's start (input pipeline)",
    ),
    # Read by the optimization findings (analytics/optimization.py); the Keras
    # callback records both where the framework exposes them.
    MetricSpec("train/loss_scale", UNIT_NONE, _E, "Mixed precision loss scale (dynamic)"),
    MetricSpec(
        "train/traces_count",
        UNIT_COUNT,
        _E,
        "Times the training step function was traced (tf.function retracing)",
    ),
    MetricSpec("train/{name}", UNIT_NONE, _E, "Training metric"),
    MetricSpec("val/loss", UNIT_NONE, _E, "Validation loss"),
    MetricSpec("val/accuracy", UNIT_NONE, _E, "Validation accuracy"),
    MetricSpec("val/{name}", UNIT_NONE, _E, "Validation metric"),
    MetricSpec("gradients/{layer}/norm", UNIT_NONE, _E, "Gradient norm (L2) of one layer"),
    # Inference: one event per request, and trailing-window statistics.
    MetricSpec("inference/latency_ms", UNIT_MS, _E, "Latency of one request"),
    MetricSpec(
        "inference/rtf", UNIT_NONE, _E, "Real-time factor: synthesis seconds per audio second"
    ),
    MetricSpec("inference/audio_s", UNIT_S, _E, "Audio produced by one request"),
    MetricSpec("inference/batch_size", UNIT_COUNT, _E, "Items in one request"),
    MetricSpec(
        "inference/stage/{stage}/latency_ms", UNIT_MS, _E, "Latency of one stage of a request"
    ),
    # Streaming synthesis (issue 12): time to first audio, text segments, tokens.
    MetricSpec("inference/ttfa_ms", UNIT_MS, _E, "Time to first audio of one request"),
    MetricSpec("inference/segments_count", UNIT_COUNT, _E, "Text segments of one request"),
    MetricSpec("inference/tokens_count", UNIT_COUNT, _E, "Output tokens of one request"),
    MetricSpec("inference/segment/latency_ms", UNIT_MS, _E, "Time to synthesize one text segment"),
    MetricSpec("inference/segment/audio_s", UNIT_S, _E, "Audio of one text segment"),
    MetricSpec("inference/segment/tokens_count", UNIT_COUNT, _E, "Output tokens of one segment"),
    MetricSpec(
        "inference/stage/{stage}/tokens_per_s",
        UNIT_PER_S,
        _E,
        "Output tokens per second of one stage of a request",
    ),
    MetricSpec(
        "inference/stage/{stage}/ms_per_token",
        UNIT_MS,
        _E,
        "Time per output token of one stage of a request",
    ),
    # The speaker-prompt cache: cold (a miss) and warm (a hit) requests apart.
    MetricSpec(
        "inference/cache_hit", UNIT_BOOL, _E, "1 for a warm request (prompt cache hit), 0 for cold"
    ),
    MetricSpec("inference/cold/latency_ms", UNIT_MS, _E, "Latency of one cold request"),
    MetricSpec("inference/warm/latency_ms", UNIT_MS, _E, "Latency of one warm request"),
    MetricSpec("inference/cold/ttfa_ms", UNIT_MS, _E, "Time to first audio of one cold request"),
    MetricSpec("inference/warm/ttfa_ms", UNIT_MS, _E, "Time to first audio of one warm request"),
    MetricSpec("inference/latency_p50_ms", UNIT_MS, _W, "Median request latency over the window"),
    MetricSpec(
        "inference/latency_p95_ms", UNIT_MS, _W, "95th percentile request latency over the window"
    ),
    MetricSpec(
        "inference/latency_p99_ms", UNIT_MS, _W, "99th percentile request latency over the window"
    ),
    MetricSpec("inference/rtf_mean", UNIT_NONE, _W, "Mean real-time factor over the window"),
    MetricSpec("inference/rtf_p50", UNIT_NONE, _W, "Median real-time factor over the window"),
    MetricSpec(
        "inference/rtf_p95", UNIT_NONE, _W, "95th percentile real-time factor over the window"
    ),
    MetricSpec("inference/ttfa_p50_ms", UNIT_MS, _W, "Median time to first audio over the window"),
    MetricSpec(
        "inference/ttfa_p95_ms", UNIT_MS, _W, "95th percentile time to first audio over the window"
    ),
    MetricSpec(
        "inference/ttfa_p99_ms", UNIT_MS, _W, "99th percentile time to first audio over the window"
    ),
    MetricSpec(
        "inference/stage/{stage}/latency_p95_ms",
        UNIT_MS,
        _W,
        "95th percentile latency of one stage over the window",
    ),
    MetricSpec(
        "inference/requests_per_s",
        UNIT_REQUESTS_PER_S,
        _W,
        "Requests finished per second over the window",
    ),
    MetricSpec(
        "inference/audio_s_per_s",
        UNIT_AUDIO_S_PER_S,
        _W,
        "Audio seconds produced per second over the window",
    ),
)

# Documents, not series.
DOCUMENTS: tuple[MetricSpec, ...] = (
    MetricSpec(
        RUN_FACTS_TAG, UNIT_NONE, KIND_DOCUMENT, "Run facts: host, versions, devices, settings"
    ),
    MetricSpec(
        MODEL_FACTS_TAG, UNIT_NONE, KIND_DOCUMENT, "Model facts: name, parameter count, size"
    ),
    MetricSpec(ALERTS_TAG, UNIT_NONE, KIND_DOCUMENT, "Alert rules firing and returning to normal"),
    MetricSpec(PROFILE_TAG, UNIT_NONE, KIND_DOCUMENT, "Profiler captures: window, steps, session"),
)

# Unit of a tag that is not in the table, from how its last component ends
# (longest suffix first). User metrics such as `train/tokens_per_s` get a unit
# this way.
_SUFFIX_UNITS: tuple[tuple[str, str], ...] = (
    ("_bytes_per_s", UNIT_BYTES_PER_S),
    ("_steps_per_s", UNIT_STEPS_PER_S),
    ("_per_s", UNIT_PER_S),
    ("_percent", UNIT_PERCENT),
    ("_bytes", UNIT_BYTES),
    ("_ms", UNIT_MS),
    ("_s", UNIT_S),
    ("_c", UNIT_CELSIUS),
    ("_w", UNIT_WATTS),
    ("_mhz", UNIT_MHZ),
    ("_count", UNIT_COUNT),
)

# A tag is one or more `/`-separated components of ASCII letters, digits,
# `_`, `.` and `-`: what TensorFlow accepts in a summary name in every mode,
# and safe in URLs, CSV headers and file names.
_COMPONENT = r"[A-Za-z0-9_.\-]+"
_TAG_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
MAX_TAG_LENGTH = 256
_NAME_RE = re.compile(_COMPONENT)


def check_tag(tag: object) -> str:
    """Returns `tag` if it is a valid ttsmon tag.

    Raises:
      TypeError: `tag` is not a string.
      ValueError: `tag` is empty, too long or has characters outside
        ``[A-Za-z0-9_.-]`` and ``/``.
    """
    if not isinstance(tag, str):
        raise TypeError(f"a ttsmon tag must be a str, not {type(tag).__name__}")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"tag {tag[:40]!r}... is longer than {MAX_TAG_LENGTH} characters")
    if not _TAG_RE.fullmatch(tag):
        raise ValueError(
            f"tag {tag!r} is not valid: use letters, digits, '_', '.', '-' "
            "in components separated by '/'"
        )
    return tag


def check_name(name: object, what: str = "metric name") -> str:
    """Returns `name` if it is valid as one tag component (no `/`).

    Raises:
      TypeError: `name` is not a string.
      ValueError: `name` is empty or has characters outside ``[A-Za-z0-9_.-]``.
    """
    if not isinstance(name, str):
        raise TypeError(f"a {what} must be a str, not {type(name).__name__}")
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"{what} {name!r} is not valid: use letters, digits, '_', '.' or '-'")
    return name


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-/]+")


def sanitize_layer_name(name: str) -> str:
    """Turns a framework's variable or layer name into tag components.

    TensorFlow's ``dense/kernel:0`` keeps its ``/`` scopes and loses the
    ``:0`` output index; any other unsafe run of characters becomes ``_``.
    """
    name = name.rsplit(":", 1)[0] if re.search(r":\d+$", name) else name
    name = _UNSAFE.sub("_", name)
    parts = [p for p in name.split("/") if p]
    return "/".join(parts) or "_"


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = re.escape(pattern)
    for ph in ("gpu", "core"):
        out = out.replace(re.escape("{" + ph + "}"), r"\d+")
    for ph in ("layer", "stage", "name"):
        out = out.replace(re.escape("{" + ph + "}"), rf"{_COMPONENT}(?:/{_COMPONENT})*")
    return re.compile(out)


# Exact tags first, then patterns in table order (specific before generic).
_EXACT = {s.pattern: s for s in METRICS + DOCUMENTS if "{" not in s.pattern}
_PATTERNS = tuple((_pattern_regex(s.pattern), s) for s in METRICS if "{" in s.pattern)


@functools.lru_cache(maxsize=4096)
def spec_for_tag(tag: str) -> MetricSpec:
    """Returns the table row for `tag`, or a row inferred from its suffix.

    A tag outside the table (a user's own metric) gets the unit its last
    component's suffix implies (``_ms``, ``_bytes``, ...) and kind ``event``.
    """
    spec = _EXACT.get(tag)
    if spec is not None:
        return spec
    for regex, spec in _PATTERNS:
        if regex.fullmatch(tag):
            if spec.unit == UNIT_NONE and ("{name}" in spec.pattern):
                return dataclasses.replace(spec, pattern=tag, unit=unit_from_suffix(tag))
            return spec
    return MetricSpec(tag, unit_from_suffix(tag), KIND_EVENT, "")


def unit_from_suffix(tag: str) -> str:
    """The unit that the end of `tag` names, or ``""``."""
    last = tag.rsplit("/", 1)[-1]
    for suffix, unit in _SUFFIX_UNITS:
        if last.endswith(suffix):
            return unit
    return UNIT_NONE


@dataclasses.dataclass(frozen=True)
class Payload:
    """The parsed `plugin_data.content` of one ttsmon series."""

    version: int = PAYLOAD_VERSION
    unit: str = UNIT_NONE
    kind: str = KIND_GAUGE
    description: str = ""


def encode_payload(spec: MetricSpec) -> bytes:
    """The `plugin_data.content` bytes for a series described by `spec`."""
    doc: dict[str, Any] = {"version": PAYLOAD_VERSION, "unit": spec.unit, "kind": spec.kind}
    if spec.description:
        doc["description"] = spec.description
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def parse_plugin_metadata(content: bytes) -> Payload:
    """Parses `plugin_data.content`; tolerant of newer or damaged payloads.

    Readers must keep working on logs from newer recorders, so unknown fields
    are ignored and a payload that is not a JSON object gives the defaults.
    """
    try:
        doc = json.loads(content.decode("utf-8")) if content else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}

    def _str(key: str, default: str) -> str:
        value = doc.get(key, default)
        return value if isinstance(value, str) else default

    version = doc.get("version", PAYLOAD_VERSION)
    return Payload(
        version=version if isinstance(version, int) else PAYLOAD_VERSION,
        unit=_str("unit", UNIT_NONE),
        kind=_str("kind", KIND_GAUGE),
        description=_str("description", ""),
    )


def create_summary_metadata(tag: str) -> summary_pb2.SummaryMetadata:
    """Metadata for a float32 series `tag` (data class SCALAR)."""
    spec = spec_for_tag(tag)
    md = summary_pb2.SummaryMetadata(
        data_class=summary_pb2.DATA_CLASS_SCALAR,
        summary_description=spec.description,
    )
    md.plugin_data.plugin_name = PLUGIN_NAME
    md.plugin_data.content = encode_payload(spec)
    return md


def create_document_metadata(tag: str) -> summary_pb2.SummaryMetadata:
    """Metadata for a JSON document `tag` (data class TENSOR)."""
    spec = spec_for_tag(tag)
    spec = dataclasses.replace(spec, kind=KIND_DOCUMENT)
    md = summary_pb2.SummaryMetadata(
        data_class=summary_pb2.DATA_CLASS_TENSOR,
        summary_description=spec.description,
    )
    md.plugin_data.plugin_name = PLUGIN_NAME
    md.plugin_data.content = encode_payload(spec)
    return md


_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def scalar_tensor(value: float) -> tensor_pb2.TensorProto:
    """A rank-0 float32 tensor proto (NaN and Inf are kept as they are)."""
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=_SCALAR_SHAPE, float_val=[value]
    )


def document_tensor(doc: Any) -> tensor_pb2.TensorProto:
    """A rank-0 string tensor proto holding `doc` as UTF-8 JSON.

    Values JSON cannot hold (NaN, sets, paths, ...) are written as strings
    rather than failing: facts are informative, never worth losing a run over.
    """
    text = json.dumps(
        _finite(doc), ensure_ascii=False, default=str, allow_nan=False, sort_keys=True
    )
    return tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, tensor_shape=_SCALAR_SHAPE, string_val=[text.encode("utf-8")]
    )


def _finite(obj: Any) -> Any:
    """`obj` with non-finite floats as the strings "NaN", "Infinity", "-Infinity"."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def decode_document(data: bytes | str) -> Any:
    """Parses the JSON of a document value (bytes as the data provider gives them)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data)


def sample_step(wall_time_s: float) -> int:
    """The step of a sampler record: integer milliseconds since the Unix epoch.

    Samples must have strictly increasing steps across restarts of a job: the
    Rust loader drops every earlier record whose step is not below a new one
    (its reaction to a restart from a checkpoint), so a sample index that
    started again at 0 would hide the whole earlier history.
    """
    return int(wall_time_s * 1000.0)
