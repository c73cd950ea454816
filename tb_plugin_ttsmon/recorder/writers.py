"""The two event writers: tf.summary-based and TF-free, with one on-disk result.

Both write one TensorBoard event per batch of values (one sample, one
`log_*` call): a `Summary` holding one value per tag, built by
`build_summary` from `metadata`. Summary metadata goes with the first value
of each tag in each event file, which is all TensorBoard reads of it.

* `TFSummaryWriter` uses `tf.summary.create_file_writer` and
  `tf.summary.experimental.write_raw_pb`: TensorFlow's C++ event writer and
  file systems (``gs://``, ``s3://``, HDFS), one op call per batch.
* `EventFileSummaryWriter` uses TensorBoard's `EventFileWriter` and the protos
  in `tensorboard.compat.proto`: no TensorFlow needed (PyTorch jobs).
"""

from __future__ import annotations

import abc
import errno
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2

from tb_plugin_ttsmon import metadata

# Event files of ours end with this, so people can tell them from others'.
FILENAME_SUFFIX = ".ttsmon"
DEFAULT_FLUSH_S = 2.0
# Events queued for EventFileWriter's writer thread. A full queue blocks the
# caller, so it is large: ~1000 samples of slack against a stalled disk.
_EVENT_QUEUE_SIZE = 1024


def build_summary(
    scalars: Iterable[tuple[str, float]],
    documents: Iterable[tuple[str, Any]] = (),
    needs_metadata: set[str] | None = None,
) -> summary_pb2.Summary:
    """A `Summary` with a float32 value per scalar and a JSON value per document.

    Args:
      scalars: ``(tag, value)`` pairs; tags must be valid (`metadata.check_tag`).
      documents: ``(tag, json-able object)`` pairs.
      needs_metadata: Tags whose value must carry `SummaryMetadata` (those not
        yet written to this event file); `None` means all of them.
    """
    summary = summary_pb2.Summary()
    values = summary.value
    for tag, value in scalars:
        v = values.add(tag=tag, tensor=metadata.scalar_tensor(value))
        if needs_metadata is None or tag in needs_metadata:
            v.metadata.CopyFrom(metadata.create_summary_metadata(tag))
    for tag, doc in documents:
        v = values.add(tag=tag, tensor=metadata.document_tensor(doc))
        if needs_metadata is None or tag in needs_metadata:
            v.metadata.CopyFrom(metadata.create_document_metadata(tag))
    return summary


class SummaryWriter(abc.ABC):
    """Writes batches of ttsmon values into one new event file in `logdir`.

    Thread-safe: the sampler thread and the training thread share one writer.
    `close()` flushes and is idempotent.
    """

    name: str = ""

    def __init__(self, logdir: str, flush_s: float = DEFAULT_FLUSH_S) -> None:
        self.logdir = logdir
        self.flush_s = flush_s
        self._lock = threading.Lock()
        self._tags_written: set[str] = set()
        self._closed = False

    def write(
        self,
        step: int,
        scalars: Mapping[str, float] | Iterable[tuple[str, float]] = (),
        documents: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        wall_time_s: float | None = None,
    ) -> None:
        """Writes one event holding all of `scalars` and `documents` at `step`.

        Raises:
          OSError, or the backend's own error: the event could not be written.
          ValueError: the writer is closed.
        """
        pairs = list(scalars.items() if isinstance(scalars, Mapping) else scalars)
        docs = list(documents.items() if isinstance(documents, Mapping) else documents)
        if not pairs and not docs:
            return
        wall_time_s = time.time() if wall_time_s is None else wall_time_s
        # Deciding which tags carry metadata and queueing the event happen
        # under one lock: another thread's value of the same tag must not
        # reach the file before the value that carries the metadata.
        with self._lock:
            if self._closed:
                raise ValueError(f"ttsmon writer for {self.logdir!r} is closed")
            new = {t for t, _ in pairs if t not in self._tags_written}
            new.update(t for t, _ in docs if t not in self._tags_written)
            summary = build_summary(pairs, docs, needs_metadata=new)
            self._write_summary(int(step), summary, wall_time_s)
            self._tags_written |= new

    def flush(self) -> None:
        """Writes everything queued so far to the file."""
        with self._lock:
            if not self._closed:
                self._flush()

    def close(self) -> None:
        """Flushes and closes the file; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    @abc.abstractmethod
    def _write_summary(self, step: int, summary: summary_pb2.Summary, wall_time_s: float) -> None:
        """Queues one event; called with the lock held."""

    @abc.abstractmethod
    def _flush(self) -> None:
        """Flushes; called with the lock held."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Flushes and closes; called with the lock held, once."""


class _GuardedFile:
    """The file under EventFileWriter's writer thread, holding errors back.

    EventFileWriter's thread dies on the first write error and prints a
    traceback into the training job's stderr. Behind this proxy the first
    error is kept instead, later writes to the broken file are dropped, and
    `EventFileSummaryWriter` raises the error on the caller's next write, where
    `Monitor` logs it once and opens a new file later.
    """

    def __init__(self, file: Any) -> None:
        self._file = file
        self.error: BaseException | None = None

    def write(self, data: bytes) -> None:
        if self.error is None:
            try:
                self._file.write(data)
            except Exception as err:
                self.error = err

    def flush(self) -> None:
        if self.error is None:
            try:
                self._file.flush()
            except Exception as err:
                self.error = err

    def close(self) -> None:
        try:
            self._file.close()
        except Exception as err:
            if self.error is None:
                self.error = err

    @property
    def closed(self) -> bool:
        return bool(getattr(self._file, "closed", False))


class EventFileSummaryWriter(SummaryWriter):
    """The TF-free writer, on TensorBoard's `EventFileWriter`.

    Note that `EventFileWriter` reaches files through `tensorboard.compat.tf`,
    which is TensorFlow itself when TensorFlow is installed (and a pure-Python
    stub otherwise), so this writer imports TensorFlow where it can.
    """

    name = "event"

    def __init__(self, logdir: str, flush_s: float = DEFAULT_FLUSH_S) -> None:
        super().__init__(logdir, flush_s)
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        _check_local_dir_writable(logdir)

        self._writer = EventFileWriter(
            logdir,
            max_queue_size=_EVENT_QUEUE_SIZE,
            flush_secs=flush_s,
            filename_suffix=FILENAME_SUFFIX,
        )
        self.path: str = getattr(self._writer, "_file_name", "")
        # EventFileWriter -> _AsyncWriter -> RecordWriter -> file. Private
        # names: if a TensorBoard release renames them, errors still reach
        # the caller, only with the writer thread's traceback on stderr.
        self._guard: _GuardedFile | None = None
        record_writer = getattr(getattr(self._writer, "_async_writer", None), "_writer", None)
        if record_writer is not None and hasattr(record_writer, "_writer"):
            self._guard = _GuardedFile(record_writer._writer)
            record_writer._writer = self._guard

    def _raise_file_error(self) -> None:
        if self._guard is not None and self._guard.error is not None:
            raise self._guard.error

    def _write_summary(self, step: int, summary: summary_pb2.Summary, wall_time_s: float) -> None:
        self._raise_file_error()
        self._writer.add_event(event_pb2.Event(wall_time=wall_time_s, step=step, summary=summary))

    def _flush(self) -> None:
        self._writer.flush()
        self._raise_file_error()

    def _close(self) -> None:
        self._writer.close()
        self._raise_file_error()


class TFSummaryWriter(SummaryWriter):
    """The tf.summary-based writer: one raw-summary op call per batch.

    The event's wall time is the time of the write (TensorFlow stamps it),
    which is within microseconds of the sample's.

    It calls the op behind `tf.summary.experimental.write_raw_pb` on its own
    writer directly: going through `write_raw_pb` needs `writer.as_default()`,
    whose exit flushes the file (measured: one flush per write, a third of the
    cost, and an upload per write on gs://), and which would also obey the
    user's `tf.summary.record_if`. Where that op is not importable, it falls
    back to `write_raw_pb`.
    """

    name = "tf"

    def __init__(self, logdir: str, flush_s: float = DEFAULT_FLUSH_S) -> None:
        super().__init__(logdir, flush_s)
        import tensorflow as tf

        self._tf = tf
        before = set(_listdir(logdir))
        self._writer = tf.summary.create_file_writer(
            logdir,
            max_queue=_EVENT_QUEUE_SIZE,
            flush_millis=int(flush_s * 1000),
            filename_suffix=FILENAME_SUFFIX,
        )
        # TensorFlow creates the file lazily; write the version event now so
        # that the file exists (and a bad logdir fails here, not later).
        self._writer.init()
        self._writer.flush()
        created = sorted(set(_listdir(logdir)) - before)
        self.path = os.path.join(logdir, created[-1]) if created else ""
        try:
            from tensorflow.python.ops import gen_summary_ops

            self._raw_op: Any = gen_summary_ops.write_raw_proto_summary
            self._resource: Any = self._writer._resource
        except (ImportError, AttributeError):
            self._raw_op = None

    def _write_summary(self, step: int, summary: summary_pb2.Summary, wall_time_s: float) -> None:
        data = summary.SerializeToString()
        if self._raw_op is not None:
            self._raw_op(self._resource, step, data)
            return
        with self._writer.as_default():
            ok = self._tf.summary.experimental.write_raw_pb(data, step=step)
        if not bool(ok):
            raise RuntimeError(f"tf.summary did not write to {self.logdir!r}")

    def _flush(self) -> None:
        self._writer.flush()

    def _close(self) -> None:
        self._writer.close()


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


# A directory with less free space than this gets no new event file.
_MIN_FREE_BYTES = 64 * 1024


def _check_local_dir_writable(logdir: str) -> None:
    """Raises OSError when a local `logdir` cannot take a new file.

    EventFileWriter writes its first record on its own thread, where a
    failure ends in a traceback on stderr (once per retry); checking first
    turns a read-only, foreign-owned or full directory into one clear error
    on the caller's side.
    """
    if "://" in logdir:
        return
    os.makedirs(logdir, exist_ok=True)
    if not os.access(logdir, os.W_OK | os.X_OK):
        code = errno.EROFS if _read_only_fs(logdir) else errno.EACCES
        raise OSError(code, os.strerror(code), logdir)
    try:
        st = os.statvfs(logdir)
    except OSError:
        return
    # root may use the blocks reserved for it; others may not.
    free_blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    if free_blocks * st.f_frsize < _MIN_FREE_BYTES:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), logdir)


def _read_only_fs(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


WRITERS: dict[str, type[SummaryWriter]] = {
    "tf": TFSummaryWriter,
    "event": EventFileSummaryWriter,
}


def resolve_writer_name(name: str | None) -> str:
    """Turns ``"auto"``/`None` into ``"tf"`` or ``"event"``.

    ``auto`` is the tf.summary writer when TensorFlow imports, else the
    TF-free one. The ``TTSMON_WRITER`` environment variable overrides
    ``auto`` (handy for a PyTorch job in an environment that has TensorFlow).

    Raises:
      ValueError: `name` is not one of ``auto``, ``tf``, ``event``.
    """
    if name is None or name == "auto":
        name = os.environ.get("TTSMON_WRITER", "auto") or "auto"
        if name == "auto":
            try:
                import tensorflow  # noqa: F401
            except ImportError:
                return "event"
            return "tf"
    if name not in WRITERS:
        raise ValueError(f"writer must be 'auto', 'tf' or 'event', not {name!r}")
    return name


def create_writer(name: str | None, logdir: str, flush_s: float = DEFAULT_FLUSH_S) -> SummaryWriter:
    """A new writer (and a new event file) in `logdir`; see `resolve_writer_name`."""
    return WRITERS[resolve_writer_name(name)](logdir, flush_s=flush_s)
