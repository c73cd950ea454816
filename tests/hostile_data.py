"""A logdir of hostile data for tests/test_hostile.py, written with the real recorder.

`write_logdir(logdir)` writes, as real TensorBoard event files:

- runs whose series hold NaN, +Inf, -Inf and values near float32's limits
  (±3e38), also as the latest value (the latest loss is NaN, or +Inf);
- a one-point run, a run whose only ttsmon data is its run facts, a run
  directory whose event file holds no ttsmon data, and one whose event file
  holds no events at all;
- documents written by "another tool" (TensorBoard's own `EventFileWriter`
  with this format's document metadata, but JSON with bare ``NaN`` /
  ``Infinity`` tokens, or not JSON at all, or JSON that is not an object),
  and series it wrote under our plugin name (tags our recorder refuses,
  payloads that are not ours, float64 values, a document that is a number);
- runs with hostile names (Ge'ez script, right-to-left scripts, spaces,
  quotes, ``<script>``, ``%2e%2e``, backslashes, a line break, names as long as
  a file system allows).

It returns a `Logdir` naming every run and what it holds, so the test knows
which answers to expect without asking the plugin.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata

NAN = math.nan
INF = math.inf
# float32's largest finite value is about 3.4028e38: these survive the write,
# their squares and sums overflow.
BIG = 3e38

NONFINITE = "nonfinite/latest-loss-nan"
NEAR_LIMITS = "near-float32-limits"
SINGLE_INF = "one-point/loss-inf"
ONE_POINT = "one-point/finite"
FACTS_ONLY = "empty/facts-only"
NO_TTSMON = "empty/no-ttsmon-data"
NO_EVENTS = "empty/no-events"
FOREIGN_NAN = "foreign/nan-documents"
FOREIGN_GARBAGE = "foreign/garbage-documents"
FOREIGN_SERIES = "foreign/odd-series"
# A float64 series: the Python loader keeps it, the Rust loader drops it (it
# keeps float32 scalars only), so no test waits for it.
FLOAT64_TAG = "train/loss_float64"

# Within what ext4 and tmpfs allow: a name component is at most 255 bytes.
HOSTILE_NAMES = (
    "ሙከራ ሞዴል/ስልጠና-፩",
    "spaces  and\ttab ",
    "quotes \"double\" and 'single' and `back`",
    "<script>alert(1)</script>",
    "%2e%2e",
    "..%2f..%2fsetup.py",
    "back\\slash\\..\\..",
    "a&b=c?d#e;f+g%h",
    "emoji 🔥 مرحبا שלום",
    "line\nbreak",
    "ረ" * 80,  # 240 bytes of UTF-8
    "/".join(["L" * 250] * 4),  # a 1003-character run name
)


@dataclasses.dataclass
class Logdir:
    """What `write_logdir` wrote.

    Attributes:
      path: The logdir.
      ttsmon_runs: Runs that hold ttsmon data (series or documents).
      other_runs: Run directories with an event file but no ttsmon data.
      series_tags: Run -> the ttsmon series tags written to it.
      latest_loss: Run -> the JSON value its latest ``train/loss`` must show
        (``"NaN"``, ``"Infinity"`` or a number), for the runs where it is hostile.
    """

    path: str
    ttsmon_runs: list[str] = dataclasses.field(default_factory=list)
    other_runs: list[str] = dataclasses.field(default_factory=list)
    series_tags: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    latest_loss: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def runs(self) -> list[str]:
        """Every run directory written, with or without ttsmon data."""
        return [*self.ttsmon_runs, *self.other_runs]


def _monitor(logdir: Logdir, run: str) -> ttsmon.Monitor:
    logdir.ttsmon_runs.append(run)
    # A long interval: the sampler takes its first sample at once, and the
    # builders take the others with sample_now().
    return ttsmon.Monitor(os.path.join(logdir.path, run), interval=3600, writer="event", gpus=False)


def _nonfinite(logdir: Logdir) -> None:
    """Every kind of series, each holding NaN, ±Inf and ±3e38; the latest loss is NaN."""
    with _monitor(logdir, NONFINITE) as mon:
        mon.sample_now()
        losses = [2.0, INF, 1.5, -INF, BIG, -BIG, 1.2, NAN]
        for step, loss in enumerate(losses):
            mon.log_training(
                step,
                loss=loss,
                learning_rate=[1e-3, NAN, INF, 1e-3, -INF, BIG, 1e-3, NAN][step],
                gradient_norm=[1.0, NAN, BIG, INF, 1.0, -BIG, NAN, INF][step],
                tokens_per_s=[100.0, -INF, NAN, BIG, 0.0, 1.0, 2.0, INF][step],
            )
            mon.log_validation(step, loss=[NAN, 1.0, INF, -INF, BIG, 1.0, -BIG, NAN][step])
            mon.log_gradients(
                step, {"encoder": np.array([NAN, 1.0]), "decoder.out": np.full(2, BIG)}
            )
            mon.log_inference(
                latency_ms=[100.0, INF, BIG, NAN, 0.0, 1.0, 2.0, INF][step],
                audio_seconds=[1.0, 0.0, INF, 2.0, BIG, NAN, 0.0, 1.0][step],
                batch_size=1,
                stages={"gpt": [NAN, INF, -INF, BIG, 1.0, 2.0, 3.0, NAN][step]},
            )
            # Sampled-looking series (the overview's "latest", the heatmap,
            # findings) with hostile values, the last one included.
            mon.log_scalars(
                metadata.sample_step(time.time()) + step,
                {
                    "gpu/0/utilization_percent": [50.0, NAN, INF, -INF, BIG, -BIG, 0.0, NAN][step],
                    "gpu/0/memory_used_bytes": [1e9, BIG, INF, NAN, -BIG, 0.0, 1.0, INF][step],
                    "gpu/0/memory_total_bytes": [8e10, 8e10, 0.0, NAN, INF, 8e10, -BIG, 0.0][step],
                    "gpu/0/temperature_c": [60.0, -INF, NAN, BIG, 60.0, 61.0, 62.0, -INF][step],
                    "gpu/0/power_w": NAN,
                    "process/rss_bytes": [INF, -INF, NAN, BIG, -BIG, 1.0, 2.0, BIG][step],
                    "system/memory_used_bytes": [1e9, 2e9, NAN, INF, BIG, -BIG, 0.0, NAN][step],
                },
            )
        mon.sample_now()
    logdir.latest_loss[NONFINITE] = "NaN"


def _near_limits(logdir: Logdir) -> None:
    """Finite values only, at float32's edges: ±3e38, denormals, signed zeros."""
    with _monitor(logdir, NEAR_LIMITS) as mon:
        mon.sample_now()
        values = [BIG, -BIG, 1e-45, -1e-45, 0.0, -0.0, BIG, -BIG, BIG]
        for step, v in enumerate(values):
            mon.log_training(step, loss=v, gradient_norm=-v, learning_rate=v)
            mon.log_inference(latency_ms=abs(v), audio_seconds=abs(v) or 1.0)
            mon.log_scalars(
                metadata.sample_step(time.time()) + step,
                {"gpu/0/utilization_percent": v, "gpu/0/memory_used_bytes": -v},
            )
        mon.sample_now()
    logdir.latest_loss[NEAR_LIMITS] = float(np.float32(BIG))  # what float32 keeps of 3e38


def _one_point(logdir: Logdir) -> None:
    with _monitor(logdir, ONE_POINT) as mon:
        mon.sample_now()
        mon.log_training(0, loss=1.0)
        mon.log_inference(latency_ms=10.0, audio_seconds=1.0)
    # A single point, and it is +Inf (no sample, no inference).
    with _monitor(logdir, SINGLE_INF) as mon:
        mon.log_training(7, loss=INF)
    logdir.latest_loss[SINGLE_INF] = "Infinity"


def _empty(logdir: Logdir) -> None:
    # Run facts only: a Monitor that logged nothing.
    with _monitor(logdir, FACTS_ONLY):
        pass
    # An event file with another plugin's scalar (TensorBoard's own scalars).
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(os.path.join(logdir.path, NO_TTSMON))
    w.add_event(
        event_pb2.Event(
            wall_time=time.time(),
            step=1,
            summary=summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag="loss", simple_value=NAN)]
            ),
        )
    )
    w.close()
    logdir.other_runs.append(NO_TTSMON)
    # An event file holding only its file_version header.
    EventFileWriter(os.path.join(logdir.path, NO_EVENTS)).close()
    logdir.other_runs.append(NO_EVENTS)


def _foreign_document(tag: str, text: str) -> summary_pb2.Summary.Value:
    """A document value as another tool might write it: our metadata, any text."""
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=metadata.document_tensor({}).tensor_shape,
        string_val=[text.encode("utf-8")],
    )
    return summary_pb2.Summary.Value(
        tag=tag, tensor=tensor, metadata=metadata.create_document_metadata(tag)
    )


def _write_foreign(run_dir: str, documents: list[tuple[str, str]]) -> None:
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    w = EventFileWriter(run_dir, filename_suffix=".other-tool")
    now = time.time()
    for i, (tag, text) in enumerate(documents):
        w.add_event(
            event_pb2.Event(
                wall_time=now + i,
                step=metadata.sample_step(now) + i,
                summary=summary_pb2.Summary(value=[_foreign_document(tag, text)]),
            )
        )
    w.close()


def _foreign(logdir: Logdir) -> None:
    """Documents with bare NaN/Infinity tokens, and documents that are not objects."""
    bare = json.dumps  # allow_nan=True: writes NaN, Infinity, -Infinity bare
    run_facts = {
        "hostname": "other-tool",
        "pid": NAN,
        "started_at_s": INF,
        "host": {"cpu_count_logical": NAN, "memory_total_bytes": -INF},
        "gpus": [{"index": 0, "memory_total_bytes": NAN, "power_limit_w": INF}],
        "versions": {"tensorflow": NAN},
        "settings": {"interval_s": -INF},
    }
    model_facts = {"name": "m", "parameter_count": NAN, "size_bytes": INF, "layers": [NAN]}
    alert = {
        "wall_time_s": NAN,
        "training_step": INF,
        "rule": "loss_not_finite",
        "tag": "train/loss",
        "op": "non_finite",
        "threshold": NAN,
        "value": INF,
        "for_s": -INF,
        "severity": "critical",
        "state": "firing",
        "message": "loss is NaN",
    }
    profile = {
        "session": "2026_01_01_00_00_00",
        "session_dir": "plugins/profile/2026_01_01_00_00_00",
        "hosts": [NAN],
        "status": "ok",
        "start_wall_time_s": NAN,
        "stop_wall_time_s": INF,
        "start_step": NAN,
        "stop_step": -INF,
    }
    run_dir = os.path.join(logdir.path, FOREIGN_NAN)
    with _monitor(logdir, FOREIGN_NAN) as mon:
        mon.log_training(0, loss=1.0)
        mon.log_training(1, loss=0.5)
    _write_foreign(
        run_dir,
        [
            (metadata.RUN_FACTS_TAG, bare(run_facts)),
            (metadata.MODEL_FACTS_TAG, bare(model_facts)),
            (metadata.ALERTS_TAG, bare(alert)),
            (metadata.PROFILE_TAG, bare(profile)),
        ],
    )
    # The latest document of each tag is the hostile one.
    garbage = ["not json {", "[1, 2, NaN]", '"a string"', "1e999", "null", ""]
    with _monitor(logdir, FOREIGN_GARBAGE) as mon:
        mon.log_training(0, loss=1.0)
    _write_foreign(
        os.path.join(logdir.path, FOREIGN_GARBAGE),
        [
            (tag, text)
            for text in garbage
            for tag in (
                metadata.RUN_FACTS_TAG,
                metadata.MODEL_FACTS_TAG,
                metadata.ALERTS_TAG,
                metadata.PROFILE_TAG,
            )
        ],
    )


def _foreign_series_value(
    tag: str, tensor: tensor_pb2.TensorProto, content: bytes, data_class: int
) -> summary_pb2.Summary.Value:
    md = summary_pb2.SummaryMetadata(data_class=data_class)
    md.plugin_data.plugin_name = metadata.PLUGIN_NAME
    md.plugin_data.content = content
    return summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=md)


def _foreign_series(logdir: Logdir) -> None:
    """Series another tool wrote under our plugin name: tags our recorder refuses,
    payloads that are not ours, float64 values, and a run-facts "document" that
    is a number."""
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    logdir.ttsmon_runs.append(FOREIGN_SERIES)
    ours = metadata.encode_payload(metadata.MetricSpec("x", "", "gauge", ""))
    weird = json.dumps({"version": 99, "unit": "<b>u</b>", "kind": "weird", "new": NAN})
    scalar = summary_pb2.DATA_CLASS_SCALAR
    w = EventFileWriter(os.path.join(logdir.path, FOREIGN_SERIES), filename_suffix=".other-tool")
    now = time.time()
    for step, value in enumerate([1.0, NAN, INF, -BIG]):
        values = [
            _foreign_series_value(tag, metadata.scalar_tensor(value), ours, scalar)
            for tag in ("train/loss ሙከራ <b>", 'gpu/0/x"y', "t" * 300, "/lead/slash", "a//b")
        ]
        values.append(
            _foreign_series_value(
                "train/garbage_payload", metadata.scalar_tensor(value), b"\xff not json", scalar
            )
        )
        values.append(
            _foreign_series_value(
                "train/weird_payload", metadata.scalar_tensor(value), weird.encode(), scalar
            )
        )
        double = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_DOUBLE,
            tensor_shape=metadata.scalar_tensor(0.0).tensor_shape,
            double_val=[value],
        )
        values.append(_foreign_series_value(FLOAT64_TAG, double, ours, scalar))
        number_doc = _foreign_series_value(
            metadata.RUN_FACTS_TAG,
            metadata.scalar_tensor(value),
            metadata.create_document_metadata(metadata.RUN_FACTS_TAG).plugin_data.content,
            summary_pb2.DATA_CLASS_TENSOR,
        )
        values.append(number_doc)
        w.add_event(
            event_pb2.Event(
                wall_time=now + step, step=step, summary=summary_pb2.Summary(value=values)
            )
        )
    w.close()


def _hostile_names(logdir: Logdir) -> None:
    for name in HOSTILE_NAMES:
        with _monitor(logdir, name) as mon:
            mon.sample_now()
            for step, loss in enumerate([1.0, 0.8, NAN]):
                mon.log_training(step, loss=loss)
            mon.log_inference(latency_ms=20.0, audio_seconds=1.0, stages={"vocoder": 5.0})
            mon.sample_now()
        logdir.latest_loss[name] = "NaN"


# A distributed job (issue 11) whose id and folder are hostile, and whose ranks log
# non-finite phase timings and GPU memory.
HOSTILE_JOB = '<b>job</b> ሙከራ & "q"'
HOSTILE_JOB_FOLDER = "jobs/ሙከራ <i>"


def _job(logdir: Logdir) -> None:
    import jobdata

    from tb_plugin_ttsmon.recorder import writers

    spec = jobdata.JobSpec(
        folder=HOSTILE_JOB_FOLDER,
        job=HOSTILE_JOB,
        nodes=1,
        ranks_per_node=2,
        steps=12,
        sample_s=2.0,
    )
    logdir.ttsmon_runs += jobdata.write_job(logdir.path, spec)
    w = writers.EventFileSummaryWriter(os.path.join(logdir.path, spec.run(1)))
    try:
        wall = spec.start_wall_s + 20
        for i, v in enumerate((NAN, math.inf, -math.inf, 3e38, -3e38)):
            w.write(
                100 + i, {"train/data_time_ms": v, "train/step_time_ms": v}, wall_time_s=wall + i
            )
            w.write(
                metadata.sample_step(wall + i),
                {"gpu/1/process_memory_used_bytes": v, "gpu/1/utilization_percent": v},
                wall_time_s=wall + i,
            )
    finally:
        w.close()
    # A run whose facts claim the job with fields of the wrong types (another tool's).
    odd = f"{HOSTILE_JOB_FOLDER}/odd-rank"
    w = writers.EventFileSummaryWriter(os.path.join(logdir.path, odd))
    try:
        facts = {
            "job": HOSTILE_JOB,
            "rank": "one",
            "world_size": NAN,
            "node_rank": -1,
            "hostname": 5,
        }
        w.write(1, {"train/step_time_ms": 3.0}, {metadata.RUN_FACTS_TAG: facts}, spec.start_wall_s)
    finally:
        w.close()
    logdir.ttsmon_runs.append(odd)


def write_logdir(path: str) -> Logdir:
    """Writes every hostile run into `path` (see the module docstring)."""
    logdir = Logdir(path)
    _job(logdir)
    _nonfinite(logdir)
    _near_limits(logdir)
    _one_point(logdir)
    _empty(logdir)
    _foreign(logdir)
    _foreign_series(logdir)
    _hostile_names(logdir)
    _read_back_tags(logdir)
    return logdir


def _read_back_tags(logdir: Logdir) -> None:
    """Fills `series_tags` from the files, through TensorBoard's Python loader."""
    from tbdata import python_provider, read_scalars

    with python_provider(logdir.path) as provider:
        for run in logdir.ttsmon_runs:
            logdir.series_tags[run] = sorted(read_scalars(provider, run))
