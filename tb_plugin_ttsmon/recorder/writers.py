"""The two event writers (tf.summary-based and TF-free, one on-disk result) and their lifecycle.

Both write one TensorBoard event per batch of values (one sample, one
`log_*` call): a `Summary` holding one value per tag, built by
`build_summary` from `metadata`. Summary metadata goes with the first value
of each tag in each event file, which is all TensorBoard reads of it.

* `TFSummaryWriter` uses `tf.summary.create_file_writer` and
  `tf.summary.experimental.write_raw_pb`: TensorFlow's C++ event writer and
  file systems (``gs://``, ``s3://``, HDFS), one op call per batch.
* `EventFileSummaryWriter` uses TensorBoard's `EventFileWriter` and the protos
  in `tensorboard.compat.proto`: no TensorFlow needed (PyTorch jobs).
* `ManagedWriter` keeps one of them open for a `Monitor`: it opens, drops
  a failing writer, retries, reopens and counts what it dropped.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import errno
import functools
import itertools
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tensorboard.compat.proto import event_pb2, summary_pb2

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.faults import FaultLog, logger

# Event files of ours end with this, so people can tell them from others'.
FILENAME_SUFFIX = ".ttsmon"
DEFAULT_FLUSH_S = 2.0
# Events queued for the event writer's thread. A full queue blocks the
# caller, so it is large: ~1000 samples of slack against a stalled disk.
_EVENT_QUEUE_SIZE = 1024
# A queue this long wakes the writer thread before its next flush time.
_WAKE_WRITER_AT = 256


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


# A scalar `Summary.Value` serialized is a per-tag prefix and 4 bytes of
# float32: `serialize_summary` caches the prefix instead of building protos,
# the largest cost of a write (same bytes, see tests/test_writers.py).
# Value: tag (1) = <tag>, tensor (8) = {dtype (1) = DT_FLOAT, tensor_shape
# (2) = {}, float_val (5, packed) = [<4 bytes>]}.
_SCALAR_TENSOR_HEAD = b"\x42\x0a\x08\x01\x12\x00\x2a\x04"
_PACK_FLOAT32 = struct.Struct("<f").pack
_prefixes: dict[str, bytes] = {}
_MAX_CACHED_PREFIXES = 65536  # tags are few; a job inventing tags gets no cache


def _scalar_prefix(tag: str) -> bytes:
    prefix = _prefixes.get(tag)
    if prefix is None:
        tag_bytes = tag.encode("utf-8")
        inner = b"\x0a" + _varint(len(tag_bytes)) + tag_bytes + _SCALAR_TENSOR_HEAD
        prefix = b"\x0a" + _varint(len(inner) + 4) + inner
        if len(_prefixes) < _MAX_CACHED_PREFIXES:
            _prefixes[tag] = prefix
    return prefix


class _SummaryPacker:
    """Serializes the scalars of one tag tuple (no metadata) in a single `struct` call.

    The bytes equal `serialize_summary`'s: each value is its tag's cached
    prefix followed by the float32, and a Summary is the concatenation of its
    values.
    """

    __slots__ = ("_prefixes", "_struct")

    def __init__(self, tags: tuple[str, ...]) -> None:
        self._prefixes = tuple(_scalar_prefix(t) for t in tags)
        self._struct = struct.Struct("<" + "".join(f"{len(p)}sf" for p in self._prefixes))

    def pack(self, values: Iterable[float]) -> bytes:
        args: list[Any] = []
        for prefix, value in zip(self._prefixes, values):
            args.append(prefix)
            args.append(value)
        return self._struct.pack(*args)


# Tag tuple -> its packer; events of one kind (a step, a request) repeat their tags.
_packers: dict[tuple[str, ...], _SummaryPacker] = {}
_MAX_PACKERS = 1024


def serialize_summary(
    scalars: Iterable[tuple[str, float]],
    documents: Iterable[tuple[str, Any]] = (),
    needs_metadata: set[str] | None = None,
) -> bytes:
    """``build_summary(...).SerializeToString()``, built faster.

    Scalars without metadata are written from cached bytes; the rest (first
    values of a tag, documents, values beyond float32's range) go through
    the protos as in `build_summary`.
    """
    # A serialized message's repeated field is the concatenation of its
    # entries, so values built either way join in their original order.
    parts: list[bytes] = []
    prefixes, pack = _prefixes, _PACK_FLOAT32
    for tag, value in scalars:
        if needs_metadata is not None and tag not in needs_metadata:
            try:
                prefix = prefixes.get(tag) or _scalar_prefix(tag)
                parts.append(prefix + pack(value))
                continue
            except OverflowError:  # beyond float32: the proto's own conversion decides
                pass
        parts.append(build_summary([(tag, value)], (), needs_metadata).SerializeToString())
    docs = list(documents)
    if docs:
        parts.append(build_summary((), docs, needs_metadata).SerializeToString())
    return b"".join(parts)


class SummaryWriter(abc.ABC):
    """Writes batches of ttsmon values into one new event file in `logdir`.

    Thread-safe: the sampler thread and the training thread share one writer.
    `flush()` never holds the lock that `write()` takes, so a slow disk under a
    flush never stalls the thread that logs. `close()` flushes and is
    idempotent.
    """

    name: str = ""

    def __init__(self, logdir: str, flush_s: float = DEFAULT_FLUSH_S) -> None:
        self.logdir = logdir
        self.flush_s = flush_s
        self._lock = threading.Lock()  # guards _tags_written and the order of queued events
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
        wall_time_s = time.time() if wall_time_s is None else wall_time_s
        if not documents and isinstance(scalars, dict) and scalars:
            # The common event (a step, a request, a sample): scalars only, of
            # tags this file has seen, in an order seen before: one pack call.
            tags = tuple(scalars)
            packer = _packers.get(tags)
            if packer is not None:
                with self._lock:
                    if not self._closed and self._tags_written.issuperset(tags):
                        try:
                            summary = packer.pack(scalars.values())
                        except (OverflowError, struct.error):
                            pass  # beyond float32: the general path below
                        else:
                            self._write_summary(int(step), summary, wall_time_s)
                            return
        pairs = list(scalars.items() if isinstance(scalars, Mapping) else scalars)
        docs = list(documents.items() if isinstance(documents, Mapping) else documents)
        if not pairs and not docs:
            return
        # Deciding which tags carry metadata and queueing the event happen
        # under one lock: another thread's value of the same tag must not
        # reach the file before the value that carries the metadata.
        with self._lock:
            if self._closed:
                raise ValueError(f"ttsmon writer for {self.logdir!r} is closed")
            written = self._tags_written
            new: set[str] = set()
            if docs or not written.issuperset([t for t, _ in pairs]):
                new = {t for t, _ in pairs if t not in written}
                new.update(t for t, _ in docs if t not in written)
            summary = serialize_summary(pairs, docs, needs_metadata=new)
            self._write_summary(int(step), summary, wall_time_s)
            if new:
                written |= new
            elif not docs and pairs and len(_packers) < _MAX_PACKERS:
                tags = tuple(t for t, _ in pairs)
                if tags not in _packers:
                    _packers[tags] = _SummaryPacker(tags)

    def flush(self) -> None:
        """Writes everything queued so far to the file.

        Runs outside the write lock: writes from other threads go on (into
        the queue) while this one waits for the disk.
        """
        if not self._closed:
            self._flush()

    def close(self) -> None:
        """Flushes and closes the file; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Outside the lock too: a write that races close() fails fast with
        # "closed" instead of waiting for the final flush.
        self._close()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    @abc.abstractmethod
    def _write_summary(self, step: int, summary: bytes, wall_time_s: float) -> None:
        """Queues one event (`summary`: a serialized `Summary`); called with the lock held."""

    @abc.abstractmethod
    def _flush(self) -> None:
        """Flushes; called without the lock, possibly beside writes and `_close`."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Flushes and closes; called once, without the lock, after the last write."""


class _GuardedFile:
    """The event file under the writer thread, holding errors back.

    A write error on the writer thread must not kill it or print a traceback
    into the training job's stderr. Behind this proxy the first error is
    kept instead, later writes to the broken file are dropped, and
    `EventFileSummaryWriter` raises the error on the caller's next write,
    where `Monitor` logs it once and opens a new file later.
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


class _FlushRequest:
    """A marker in the writer thread's queue: flush, then set `done`."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()  # the writer thread's last item: flush, close the file, exit


def _file_uid() -> int:
    """The per-process counter in event file names, shared with TensorBoard's writers.

    Two writers of one process that open a file in one second in one
    directory must not pick the same name; sharing EventFileWriter's counter
    keeps that true beside a user's own TensorBoard writers too.
    """
    try:
        from tensorboard.summary.writer.event_file_writer import _global_uid

        return int(_global_uid.get())
    except (ImportError, AttributeError):
        return next(_OWN_UID)


_OWN_UID = itertools.count()


class EventFileSummaryWriter(SummaryWriter):
    """The TF-free writer: TensorBoard's record format, a queue and one writer thread.

    The file on disk is what TensorBoard's `EventFileWriter` writes (its file
    name, its ``brain.Event:2`` version event, TFRecord framing through
    TensorBoard's `RecordWriter`), but the queue is ours: EventFileWriter's
    `flush()` holds the lock its `add_event()` takes while the disk catches
    up, which would stall the training thread behind a slow disk. Here a
    flush is a marker that travels through the queue; writers never wait for
    it. It writes local files only (plain buffered files); run directories
    in object stores are `objectstore.RollingObjectWriter`'s.

    Raises:
      ValueError: `logdir` is the URL of a store.
      OSError: the directory cannot take a new file.
    """

    name = "event"

    def __init__(self, logdir: str, flush_s: float = DEFAULT_FLUSH_S) -> None:
        super().__init__(logdir, flush_s)
        logdir = _local_path(logdir)
        # EventFileWriter's name, whole seconds first and the counter zero-padded
        # (TensorBoard's is not), so the files of one second sort in order too.
        name = (
            f"events.out.tfevents.{int(time.time()):010d}."
            f"{socket.gethostname()}.{os.getpid()}.{_file_uid():06d}"
        )
        self.path: str = os.path.join(logdir, name) + FILENAME_SUFFIX
        # A local path: a plain buffered file. TensorBoard's TF-free gfile
        # opens and closes the file for every event (about half of a
        # request's recording cost), and its TF-backed one would import
        # TensorFlow into a PyTorch job (seconds, hundreds of MB). URLs of
        # stores go to `objectstore.RollingObjectWriter` (see `writer_class`).
        _check_local_dir_writable(logdir)
        os.makedirs(logdir, exist_ok=True)
        file = open(self.path, "wb")  # noqa: SIM115  # closed by the writer thread
        self._guard = _GuardedFile(file)
        self._write_record = record_framer(self._guard)
        # Events for the writer thread. A deque, not a queue.Queue: appending
        # takes no lock and wakes no thread, so a write costs the caller
        # next to nothing; the thread wakes on its own to drain it.
        self._pending: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttsmon-event-writer", daemon=True)
        self._thread.start()
        version = event_pb2.Event(
            wall_time=time.time(),
            file_version="brain.Event:2",
            source_metadata=event_pb2.SourceMetadata(
                writer="tensorboard.summary.writer.event_file_writer"
            ),
        )
        self._pending.append(version.SerializeToString())
        try:
            # The first flush fails here on a full disk.
            self._flush()
        except BaseException:
            self._closed = True
            with contextlib.suppress(Exception):
                self._close()  # ends the writer thread; a retry makes a new one
            raise

    def _raise_file_error(self) -> None:
        if self._guard.error is not None:
            raise self._guard.error

    def _write_summary(self, step: int, summary: bytes, wall_time_s: float) -> None:
        self._raise_file_error()
        # The event's bytes built directly, as protobuf would (fields in
        # number order, defaults left out): a request or a step is written
        # many times a second, and the message object costs more than this.
        data = _event_head(wall_time_s, step) + _summary_field(summary)
        pending = self._pending
        if len(pending) >= _WAKE_WRITER_AT:
            wake = self._wake
            if not wake.is_set():  # set() takes a lock and notifies: once is enough
                wake.set()
            # The disk is ~1000 events behind: wait for room. Dropping data
            # silently would be worse than a slowed step.
            while len(pending) >= _EVENT_QUEUE_SIZE and self._thread.is_alive():
                time.sleep(0.001)
        pending.append(data)

    def _flush(self) -> None:
        request = _FlushRequest()
        self._pending.append(request)
        self._wake.set()
        while not request.done.wait(0.5):
            if not self._thread.is_alive():  # closed under us; nothing left to wait for
                break
        self._raise_file_error()

    def _close(self) -> None:
        self._pending.append(_STOP)
        self._wake.set()
        self._thread.join()
        self._raise_file_error()

    def _run(self) -> None:
        """The writer thread: frames and writes queued events, flushes on time or on request."""
        pending = self._pending
        unflushed = False
        next_flush_s = time.monotonic() + self.flush_s
        while True:
            # Wakes for a flush, a close or a long queue, else at the next
            # flush time: data is invisible to TensorBoard until flushed anyway.
            self._wake.wait(max(next_flush_s - time.monotonic(), 0.0))
            self._wake.clear()  # before draining: a later set() is never lost
            while pending:
                item = pending.popleft()
                if isinstance(item, bytes):
                    if self._guard.error is None:
                        try:
                            self._write_record(item)
                        except Exception as err:  # framing failed: keep it like a file error
                            self._guard.error = err
                    unflushed = True
                elif item is _STOP:
                    self._guard.flush()
                    self._guard.close()
                    return
                elif isinstance(item, _FlushRequest):
                    self._guard.flush()
                    unflushed = False
                    item.done.set()
            if time.monotonic() >= next_flush_s:
                if unflushed:
                    self._guard.flush()
                    unflushed = False
                next_flush_s = time.monotonic() + self.flush_s


# TFRecord's CRC mask (TensorFlow's lib/hash/crc32c.h).
_CRC_MASK_DELTA = 0xA282EAD8


def record_framer(file: Any) -> Callable[[bytes], None]:
    """A function that writes one TFRecord (length, CRC, data, CRC) of its bytes to `file`.

    TensorBoard's `RecordWriter` computes the CRC32C in pure Python, about
    0.1 ms per kilobyte: 90 % of the event writer's CPU, taken from the
    training process (bench/write_cost.py). `google-crc32c`'s C code gives
    the same checksums a thousand times faster; without it (or with only
    its Python fallback) TensorBoard's framer is used.
    """
    try:
        import google_crc32c

        fast = getattr(google_crc32c, "implementation", "") == "c"
    except ImportError:
        fast = False
    if not fast:
        from tensorboard.summary.writer.record_writer import RecordWriter

        return RecordWriter(file).write
    crc = google_crc32c.value
    pack_length, pack_crc = struct.Struct("<Q").pack, struct.Struct("<I").pack

    def masked(data: bytes) -> bytes:
        c = crc(data)
        return pack_crc(((c >> 15 | c << 17) + _CRC_MASK_DELTA) & 0xFFFFFFFF)

    def write(data: bytes) -> None:
        header = pack_length(len(data))
        file.write(header + masked(header) + data + masked(data))

    return write


_PACK_DOUBLE = struct.Struct("<d").pack


def _event_head(wall_time_s: float, step: int) -> bytes:
    """`Event(wall_time=..., step=...)` serialized: field 1 (double), field 2 (int64 varint)."""
    head = b"\x09" + _PACK_DOUBLE(wall_time_s) if wall_time_s != 0.0 else b""
    if step > 0:
        head += b"\x10" + _varint(step)
    elif step < 0:  # int64 as protobuf writes it: ten bytes of two's complement
        head += b"\x10" + _varint(step + (1 << 64))
    return head


def _summary_field(summary_bytes: bytes) -> bytes:
    """`Event.summary` (field 5, length-delimited) holding `summary_bytes`, serialized."""
    return b"\x2a" + _varint(len(summary_bytes)) + summary_bytes


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


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

    The op is called through TensorFlow's eager fast path with its inputs
    made eager tensors first: the generated wrapper, given a Python int and
    bytes, fails the fast path and converts them on its slow path (measured:
    ~45 us a call against ~14 us). Private TensorFlow names: where they are
    missing or refuse, the writer uses the generated wrapper for good.
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
        self._fast_op: Any = None
        if self._raw_op is not None:
            try:
                from tensorflow.python import pywrap_tfe
                from tensorflow.python.eager import context as tf_context
                from tensorflow.python.framework import dtypes, ops

                self._fast_op = pywrap_tfe.TFE_Py_FastPathExecute
                self._eager_context: Any = tf_context.context()
                self._eager_tensor: Any = ops.EagerTensor
                self._int64: Any = dtypes.int64.as_datatype_enum
                self._string: Any = dtypes.string.as_datatype_enum
            except (ImportError, AttributeError):
                self._fast_op = None

    def _write_summary(self, step: int, summary: bytes, wall_time_s: float) -> None:
        data = summary
        if self._fast_op is not None:
            try:
                # Device "": host memory, where the writer's kernel runs.
                self._fast_op(
                    self._eager_context,
                    "WriteRawProtoSummary",
                    None,
                    self._resource,
                    self._eager_tensor(step, "", self._int64),
                    self._eager_tensor(data, "", self._string),
                )
                return
            except self._tf.errors.OpError:
                raise  # the write itself failed (the file, the disk)
            except Exception:  # the fast path refused (graph mode, an API change)
                self._fast_op = None
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


def _local_path(logdir: str) -> str:
    """`logdir` as a local path (``file:///x`` is ``/x``).

    Raises:
      ValueError: `logdir` is the URL of a store, not a local path.
    """
    from tb_plugin_ttsmon import stores

    scheme = stores.url_scheme(logdir)
    if scheme in ("file", "local"):
        return logdir.split("://", 1)[1]
    if scheme:
        raise ValueError(
            f"the event file writer writes local files; {stores.redact_url(logdir)!r} "
            "is written by objectstore.RollingObjectWriter (see writers.writer_class)"
        )
    return logdir


def _shown_path(logdir: str) -> str:
    from tb_plugin_ttsmon import stores

    return stores.redact_url(logdir)


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


def writer_class(name: str, logdir: str) -> type[SummaryWriter]:
    """The writer class that serves `logdir` for the resolved writer `name`.

    Local paths: `name`'s (``"tf"`` or ``"event"``). URLs of stores: the
    rolling object writer through fsspec, except where ``"tf"`` was chosen
    and TensorFlow's file layer serves the scheme itself (``gs://``).
    """
    from tb_plugin_ttsmon import stores
    from tb_plugin_ttsmon.recorder import objectstore

    if stores.is_remote(logdir) and not (
        name == "tf" and objectstore.tf_serves(stores.url_scheme(logdir))
    ):
        return objectstore.RollingObjectWriter
    return WRITERS[name]


def create_writer(
    name: str | None, logdir: str, flush_s: float = DEFAULT_FLUSH_S, **options: Any
) -> SummaryWriter:
    """A new writer (and a new event file) in `logdir`; see `resolve_writer_name`.

    `options` go to the rolling object writer (`roll_s`, `spool_bytes`, ...)
    where `logdir` is in an object store; elsewhere they are ignored.
    """
    cls = writer_class(resolve_writer_name(name), logdir)
    if cls.name == "object":
        return cls(logdir, flush_s=flush_s, **options)
    return cls(logdir, flush_s=flush_s)


# After a write fails (disk full, directory gone), the writer is dropped and
# a new one (a new event file) is tried this often; data meanwhile is lost.
WRITE_RETRY_S = 30.0


class ManagedWriter:
    """A run directory's writer for the life of a `Monitor`: nothing it does raises.

    Opens a `SummaryWriter` (a new event file) in `logdir`. When opening or a
    write fails (a full disk, a read-only or vanished directory) it logs one
    warning, drops the writer and the data meanwhile, counts what it drops,
    and opens a new file at the next write after `retry_s`; when that works
    it says so, with the count. On each open it warns (once per writer) if
    another live process writes ttsmon data into the same directory.

    Args:
      logdir: The run directory.
      writer_name: ``"tf"`` or ``"event"`` (see `resolve_writer_name`).
      flush_s: The writers' flush interval.
      faults: Where warnings go, each once.
      retry_s: Seconds between attempts to open a new file after a failure.
      options: For a run directory in an object store, the rolling object
        writer's settings (``roll_s``, ``spool_bytes``, ...).
    """

    def __init__(
        self,
        logdir: str,
        writer_name: str,
        flush_s: float,
        faults: FaultLog,
        retry_s: float = WRITE_RETRY_S,
        **options: Any,
    ) -> None:
        self.logdir = logdir
        self._shown = _shown_path(logdir)  # for messages: no credentials in URLs
        self.writer_name = writer_name
        self._class = writer_class(writer_name, logdir)
        self._options = options if self._class.name == "object" else {}
        self.flush_s = flush_s
        self.retry_s = retry_s
        self._faults = faults
        self._lock = threading.Lock()  # guards the writer's replacement
        self._writer: SummaryWriter | None = None
        self._retry_at_s = 0.0  # monotonic
        self.dropped_events = 0
        self._closed = False
        self._open()

    @property
    def current(self) -> SummaryWriter | None:
        """The writer in use, or `None` while writing is failing."""
        return self._writer

    @property
    def kind(self) -> str:
        """Which writer serves the run: ``"tf"``, ``"event"`` or ``"object"``."""
        return self._class.name

    def write(
        self,
        step: int,
        scalars: Mapping[str, float],
        documents: Mapping[str, Any] | None = None,
        wall_time_s: float | None = None,
    ) -> bool:
        """Writes one event; returns whether it was handed to a writer."""
        writer = self._writer or self._reopen()
        if writer is None:
            self.dropped_events += 1
            return False
        try:
            writer.write(step, scalars, documents or (), wall_time_s=wall_time_s)
        except Exception as err:
            if self._closed:
                return False
            self._failed(err, writer)
            return False
        return True

    def flush(self) -> None:
        """Flushes the writer in use; a failure is handled as a failed write."""
        writer = self._writer
        if writer is not None:
            try:
                writer.flush()
            except Exception as err:
                if not self._closed:
                    self._failed(err, writer)

    def close(self) -> None:
        """Flushes and closes the file; later writes are dropped. Idempotent."""
        self._closed = True
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as err:
                self._faults.warn_once("close", "closing the event file failed (%s)", err)

    def _open(self) -> SummaryWriter | None:
        """Opens the writer; on failure warns and schedules a retry."""
        with self._lock:
            if self._writer is not None:
                return self._writer
            try:
                self._writer = self._class(self.logdir, flush_s=self.flush_s, **self._options)
            except Exception as err:
                self._retry_at_s = time.monotonic() + self.retry_s
                self._faults.warn_once(
                    "write",
                    "cannot write to %s (%s: %s); "
                    "data is dropped and the directory retried every %d s",
                    self._shown,
                    type(err).__name__,
                    err,
                    self.retry_s,
                )
                return None
            writer = self._writer
        self._check_other_writers(getattr(writer, "path", ""))
        return writer

    def _reopen(self) -> SummaryWriter | None:
        if time.monotonic() < self._retry_at_s or self._closed:
            return None
        writer = self._open()
        if writer is not None and self._faults.seen("write"):
            logger.warning(
                "ttsmon: writing to %s works again (new event file); %d events were dropped",
                self._shown,
                self.dropped_events,
            )
            self._faults.forget("write")
            self.dropped_events = 0
        return writer

    def _failed(self, err: Exception, writer: SummaryWriter) -> None:
        with self._lock:
            if self._writer is not writer:
                return  # another thread already replaced it
            self._writer = None
            self._retry_at_s = time.monotonic() + self.retry_s
        self.dropped_events += 1
        self._faults.warn_once(
            "write",
            "writing to %s failed (%s: %s); data is dropped and the directory retried every %d s",
            self._shown,
            type(err).__name__,
            err,
            self.retry_s,
        )
        with contextlib.suppress(Exception):
            writer.close()

    def _check_other_writers(self, own_path: str) -> None:
        """Warns when another live process writes ttsmon data into this run."""
        if "://" in self.logdir:
            return
        try:
            entries = list(os.scandir(self.logdir))
        except OSError:
            return
        host_name, own_pid = _hostname(), os.getpid()
        now_s = time.time()  # compared with file mtimes, which are wall time
        for entry in entries:
            name = entry.name
            if not name.endswith(FILENAME_SUFFIX) or os.path.join(self.logdir, name) == own_path:
                continue
            parts = name[: -len(FILENAME_SUFFIX)].split(".")
            # events.out.tfevents.<time>.<host...>.<pid>.<counter>
            if len(parts) < 7 or not parts[-2].isdigit():
                continue
            host, pid = ".".join(parts[4:-2]), int(parts[-2])
            if host == host_name and pid == own_pid:
                continue
            try:
                live = now_s - entry.stat().st_mtime < max(60.0, 3 * self.flush_s)
            except OSError:
                continue
            if live:
                self._faults.warn_once(
                    f"other-writer:{host}:{pid}",
                    "another process (host %s, pid %d) is writing ttsmon data into %s. "
                    "TensorBoard merges a directory's files into one run and its Rust loader "
                    "drops records whose steps go backwards, so give each process its own run "
                    "directory (for example %s)",
                    host,
                    pid,
                    self._shown,
                    os.path.join(self.logdir, f"{host_name}-{own_pid}"),
                )


@functools.lru_cache(maxsize=1)
def _hostname() -> str:
    return socket.gethostname()
