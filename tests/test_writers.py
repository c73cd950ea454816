"""Both writers produce the same on-disk format, readable by both TensorBoard loaders."""

from __future__ import annotations

import math
import os
import time

import pytest
from tbdata import python_provider, raw_events, read_documents, read_scalars, rust_provider
from tensorboard.compat.proto import summary_pb2, types_pb2

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder import writers


def _write_three(logdir: str, name: str) -> None:
    w = writers.create_writer(name, logdir)
    w.write(1, {"system/cpu_percent": 12.5, "gpu/0/temperature_c": 61.0}, wall_time_s=1000.0)
    w.write(2, {"system/cpu_percent": float("nan"), "gpu/0/temperature_c": math.inf})
    w.write(3, {"system/cpu_percent": 99.0}, {metadata.RUN_FACTS_TAG: {"hostname": "ሰላም<b>"}})
    w.close()


def test_events_have_the_contract_fields(tmp_path, writer_name):
    run = tmp_path / "run"
    _write_three(str(run), writer_name)
    events = raw_events(str(tmp_path))
    values = [(e.step, v) for e in events for v in e.summary.value]
    scalars = [(s, v) for s, v in values if v.tag != metadata.RUN_FACTS_TAG]
    assert len(scalars) == 5
    for _, v in scalars:
        assert v.tensor.dtype == types_pb2.DT_FLOAT
        assert len(v.tensor.tensor_shape.dim) == 0
        assert not v.HasField("simple_value") if hasattr(v, "HasField") else True
    with_md = [v for _, v in scalars if v.HasField("metadata")]
    # Metadata once per tag per file, on its first value.
    assert sorted(v.tag for v in with_md) == ["gpu/0/temperature_c", "system/cpu_percent"]
    for v in with_md:
        assert v.metadata.plugin_data.plugin_name == "ttsmon"
        assert v.metadata.data_class == summary_pb2.DATA_CLASS_SCALAR
    facts = [v for _, v in values if v.tag == metadata.RUN_FACTS_TAG]
    assert facts[0].metadata.data_class == summary_pb2.DATA_CLASS_TENSOR
    assert facts[0].tensor.dtype == types_pb2.DT_STRING
    name = os.listdir(run)[0]
    assert name.startswith("events.out.tfevents.") and name.endswith(".ttsmon")


@pytest.mark.parametrize("provider", [python_provider, rust_provider])
def test_both_loaders_read_values_units_and_documents(tmp_path, writer_name, provider):
    _write_three(str(tmp_path / "run"), writer_name)
    with provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
        docs = read_documents(p, "run", metadata.RUN_FACTS_TAG)
    cpu = series["system/cpu_percent"]
    assert cpu.unit == "%" and cpu.kind == "rate"
    assert cpu.steps == [1, 2, 3]
    assert cpu.values[0] == 12.5 and math.isnan(cpu.values[1]) and cpu.values[2] == 99.0
    temp = series["gpu/0/temperature_c"]
    assert temp.unit == "°C" and temp.values == [61.0, math.inf]
    assert docs == [{"hostname": "ሰላም<b>"}]


def test_event_writer_keeps_the_given_wall_time(tmp_path):
    w = writers.EventFileSummaryWriter(str(tmp_path))
    w.write(7, {"train/loss": 0.5}, wall_time_s=1234.5)
    w.close()
    (event,) = [e for e in raw_events(str(tmp_path)) if e.summary.value]
    assert event.wall_time == 1234.5 and event.step == 7


def test_one_event_per_batch(tmp_path, writer_name):
    w = writers.create_writer(writer_name, str(tmp_path))
    w.write(5, {f"system/cpu_core/{i}/utilization_percent": float(i) for i in range(30)})
    w.close()
    events = [e for e in raw_events(str(tmp_path)) if e.summary.value]
    assert len(events) == 1 and len(events[0].summary.value) == 30


def test_restart_appends_a_new_file_and_keeps_old_data(tmp_path, writer_name):
    run = str(tmp_path / "run")
    for step in (1, 2):
        w = writers.create_writer(writer_name, run)
        w.write(step, {"train/loss": float(step)})
        w.close()
        # TensorBoard reads a run's files in name order, and names start
        # with whole seconds: a real restart is never within one second.
        time.sleep(1.05 - time.time() % 1.0)
    assert len(os.listdir(run)) == 2
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].values == [1.0, 2.0]


def test_two_writers_in_one_process_and_dir_never_share_a_file(tmp_path, writer_name):
    a = writers.create_writer(writer_name, str(tmp_path))
    b = writers.create_writer(writer_name, str(tmp_path))
    a.write(1, {"train/loss": 1.0})
    b.write(2, {"train/loss": 2.0})
    a.close()
    b.close()
    assert len(os.listdir(tmp_path)) == 2


def test_close_is_idempotent_and_later_writes_fail_clearly(tmp_path, writer_name):
    w = writers.create_writer(writer_name, str(tmp_path))
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write(1, {"train/loss": 1.0})


def test_flush_makes_data_readable_before_close(tmp_path, writer_name):
    w = writers.create_writer(writer_name, str(tmp_path / "run"), flush_s=60)
    w.write(1, {"train/loss": 3.0})
    w.flush()
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].values == [3.0]
    w.close()


def test_flush_interval_delivers_without_explicit_flush(tmp_path, writer_name):
    w = writers.create_writer(writer_name, str(tmp_path / "run"), flush_s=0.2)
    w.write(1, {"train/loss": 3.0})
    deadline = time.monotonic() + 20  # a bound for a slow CI machine, not a timing check
    found: list[float] = []
    while time.monotonic() < deadline and not found:
        # TensorFlow's writer flushes on its next write after the interval.
        w.write(2, {"train/accuracy": 0.5})
        time.sleep(0.3)
        with python_provider(str(tmp_path)) as p:
            series = read_scalars(p, "run")
            found = series["train/loss"].values if "train/loss" in series else []
    w.close()
    assert found == [3.0]


def test_auto_writer_follows_tensorflow_availability(monkeypatch):
    monkeypatch.delenv("TTSMON_WRITER", raising=False)
    try:
        import tensorflow  # noqa: F401

        expected = "tf"
    except ImportError:
        expected = "event"
    assert writers.resolve_writer_name("auto") == expected
    monkeypatch.setenv("TTSMON_WRITER", "event")
    assert writers.resolve_writer_name("auto") == "event"
    with pytest.raises(ValueError, match="writer must be"):
        writers.resolve_writer_name("tensorboardX")


def test_fast_serialization_writes_the_protos_bytes():
    """`serialize_summary` (cached bytes) and `build_summary` (protos) agree byte for byte."""
    scalars = [
        ("system/cpu_percent", 12.5),
        ("gpu/0/temperature_c", float("nan")),
        ("train/loss", math.inf),
        ("train/gradient_norm", -math.inf),
        ("train/learning_rate", -0.0),
        ("process/rss_bytes", 3.0e38),
        ("system/memory_used_bytes", 1e39),  # beyond float32: becomes Inf either way
        ("train/tiny", 1e-45),
        ("gradients/ሰላም/" + "x" * 200 + "/norm", 0.1),  # a long, non-ASCII tag
    ]
    docs = [(metadata.RUN_FACTS_TAG, {"hostname": "h"})]
    for needs in (set(), {"train/loss"}, None):
        for d in ((), docs):
            want = writers.build_summary(scalars, d, needs_metadata=needs)
            got = writers.serialize_summary(scalars, d, needs_metadata=needs)
            assert got == want.SerializeToString()


def test_tf_writer_falls_back_when_the_eager_fast_path_refuses(tmp_path, needs_tf):
    w = writers.TFSummaryWriter(str(tmp_path / "run"))
    w.write(1, {"train/loss": 1.0})
    assert w._fast_op is not None  # the fast path wrote the first event

    def refuse(*args):
        raise TypeError("fast path refused")

    w._fast_op = refuse
    w.write(2, {"train/loss": 2.0})
    w.write(3, {"train/loss": 3.0})
    w.close()
    assert w._fast_op is None
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].values == [1.0, 2.0, 3.0]


def test_an_event_file_that_cannot_be_written_raises_and_leaves_no_thread(tmp_path, monkeypatch):
    import errno
    import threading

    class ReadOnlyFile:  # the lowest layer: the file the writer opens, refusing every write
        closed = False

        def __init__(self, *args, **kwargs):
            pass

        def write(self, data):
            raise OSError(errno.EROFS, "Read-only file system")

        def flush(self):
            pass

        def close(self):
            pass

    # A local path is a plain file opened with `open` (gfile is for URLs).
    monkeypatch.setattr(writers, "open", ReadOnlyFile, raising=False)
    before = set(threading.enumerate())
    for _ in range(3):  # as Monitor retries
        with pytest.raises(OSError, match="Read-only"):
            writers.EventFileSummaryWriter(str(tmp_path))
    assert set(threading.enumerate()) - before == set()


def test_event_files_of_one_second_sort_in_the_order_they_were_opened(tmp_path, monkeypatch):
    # TensorBoard reads a run's files in name order: the 10th file of a second
    # must not sort before the 9th, or its steps read as going backwards.
    monkeypatch.setattr(writers.time, "time", lambda: 1_760_000_000.5)
    opened = []
    for i in range(12):
        w = writers.create_writer("event", str(tmp_path))
        w.write(i, {"train/loss": float(i)}, wall_time_s=1_760_000_000.0 + i)
        w.close()
        opened.append(os.path.basename(w.path))
    assert len(set(opened)) == 12
    assert sorted(opened) == opened
    with python_provider(str(tmp_path)) as provider:
        steps = [p[0] for p in read_scalars(provider, ".")["train/loss"].points]
    assert steps == list(range(12))


def test_record_framing_matches_tensorboards_byte_for_byte():
    import io
    import random

    from tensorboard.summary.writer.record_writer import RecordWriter

    rng = random.Random(7)
    records = [b"", b"x", bytes(range(256)) * 5] + [
        rng.randbytes(rng.randrange(1, 5000)) for _ in range(50)
    ]
    ours, theirs = io.BytesIO(), io.BytesIO()
    write = writers.record_framer(ours)
    reference = RecordWriter(theirs)
    for data in records:
        write(data)
        reference.write(data)
    assert ours.getvalue() == theirs.getvalue()
