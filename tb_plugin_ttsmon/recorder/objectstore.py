"""Run directories in object stores (``s3://``, ``gs://``, ``az://``, ...) through fsspec.

An object store cannot append to an object, and TensorFlow's file layer no
longer serves ``s3://`` (it dropped it in 2.6). `RollingObjectWriter` writes
a run as a sequence of event-file objects instead, each a complete event file
that is written once and never rewritten:

1. **Segment.** The logging threads append serialized events to an in-memory
   segment under the writer's lock (no I/O, no wait).
2. **Roll.** Every `roll_s` seconds, at close, and when a segment reaches
   `MAX_OBJECT_BYTES`, the roller thread frames the segment's events
   (TFRecord, CRC32C) after a version event and writes the result into this
   writer's *spool* directory on the local disk. Object names sort in writing
   order (TensorBoard reads a run's files by name and never goes back), and
   summary metadata goes with the first value of each tag in each object.
3. **Upload.** The uploader thread PUTs the spooled objects in name order and
   deletes each once stored. While the store fails, objects wait in the spool
   (bounded by `spool_bytes`; the oldest is retried with backoff) and upload
   in order when it returns; one WARNING is logged at the fault and one at
   the recovery. Only a roll that would overflow the spool is dropped, and it
   is counted and reported.

The logging threads never touch the network, so an outage never blocks the
job. A ``kill -9`` loses the open segment only (at most `roll_s` of data):
objects already spooled belong to a dead process, and the next writer of the
same run directory on the same host uploads them first. Credentials come the
ordinary way (for S3: the AWS environment variables and config files,
``AWS_ENDPOINT_URL`` for S3-compatible stores); URLs are shown with any
``user:password@`` removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tensorboard.compat.proto import event_pb2

from tb_plugin_ttsmon.recorder import writers
from tb_plugin_ttsmon.recorder.faults import logger
from tb_plugin_ttsmon.stores import redact_url, url_scheme

DEFAULT_ROLL_S = 30.0
DEFAULT_SPOOL_BYTES = 256 * 2**20
# A segment this large rolls before its time: bounds the writer's memory
# and the size of one PUT under a burst of logging.
MAX_OBJECT_BYTES = 32 * 2**20
# Longest wait of `close()` (and so of interpreter exit) for the store to
# take what is left; what is still spooled then is uploaded by the next
# writer of the run directory on this host.
DEFAULT_CLOSE_TIMEOUT_S = 60.0
# Retries of a failing upload: 1 s, doubling, at most this often.
_MAX_BACKOFF_S = 8.0
# fsspec options per scheme. The uploader retries on its own, forever and in
# order, so a failing request should fail soon (and the outage be told)
# rather than block inside botocore's retries for tens of seconds.
_STORE_OPTIONS: dict[str, dict[str, Any]] = {
    "s3": {
        "config_kwargs": {
            "connect_timeout": 5,
            "read_timeout": 30,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
    },
}
_STORE_OPTIONS["s3a"] = _STORE_OPTIONS["s3"]
# Spool directories of writers alive in this process (not to be adopted).
_LIVE_SPOOLS: set[str] = set()
_LIVE_LOCK = threading.Lock()


def tf_serves(scheme: str) -> bool:
    """Whether TensorFlow's file layer serves `scheme` (``gs`` yes, ``s3`` not since 2.6).

    Only asked when TensorFlow is the chosen writer, so importing it costs nothing new.
    """
    try:
        import tensorflow as tf

        return scheme in set(tf.io.gfile.get_registered_schemes())
    except Exception:  # an old TensorFlow without the call: it served only gs:// of these
        return scheme == "gs"


def _url_digest(url: str) -> str:
    return hashlib.sha256(url.rstrip("/").encode("utf-8")).hexdigest()[:16]


@dataclass
class _Spooled:
    """An object waiting for upload: a file in a spool directory."""

    name: str
    path: str
    size: int


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


class RollingObjectWriter(writers.SummaryWriter):
    """Writes a run directory in an object store as rolling event-file objects.

    See the module's docstring for the lifecycle. `flush()` does nothing:
    objects appear at each roll (a flush per object would multiply the
    requests a run pays for).

    Args:
      logdir: The run directory's URL (``s3://bucket/exp1/rank0``).
      flush_s: Kept for the `SummaryWriter` interface; unused.
      roll_s: Seconds between objects.
      spool_bytes: Most bytes of objects waiting for upload on the local disk.
      spool_dir: Where spool directories go (default: ``<tmp>/ttsmon-spool``).
      close_timeout_s: Longest wait in `close()` for the uploads.
      filesystem: An fsspec filesystem to use in place of the URL's (tests).

    Raises:
      ValueError, ImportError: fsspec does not know the URL's scheme, or its
        package (``s3fs``, ``gcsfs``) is not installed.
      OSError: the spool directory cannot be made.
    """

    name = "object"

    def __init__(
        self,
        logdir: str,
        flush_s: float = writers.DEFAULT_FLUSH_S,
        *,
        roll_s: float = DEFAULT_ROLL_S,
        spool_bytes: int = DEFAULT_SPOOL_BYTES,
        spool_dir: str | None = None,
        close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S,
        filesystem: Any = None,
    ) -> None:
        super().__init__(logdir, flush_s)
        self.roll_s = float(roll_s)
        self.spool_bytes = int(spool_bytes)
        self.close_timeout_s = float(close_timeout_s)
        self.url = redact_url(logdir)
        if filesystem is None:
            import fsspec

            # A fresh instance: fsspec's cache would keep the endpoint and
            # credentials of the first writer of the process for good.
            filesystem, root = fsspec.core.url_to_fs(
                logdir, skip_instance_cache=True, **_STORE_OPTIONS.get(url_scheme(logdir), {})
            )
        else:
            root = logdir.split("://", 1)[-1]
        self._fs = filesystem
        self._root = root.rstrip("/")
        # Object names: EventFileWriter's, with the roll's number after the
        # writer's counter, so a run's objects sort in the order written.
        self._name_head = f"events.out.tfevents.{{:010d}}.{writers._hostname()}.{os.getpid()}"
        self._uid = writers._file_uid()
        self._seq = 0
        self._last_name_time_s = 0
        self.path = ""  # the newest object's URL

        digest = _url_digest(logdir)
        root_dir = spool_dir or os.path.join(tempfile.gettempdir(), "ttsmon-spool")
        self.spool_dir = os.path.join(
            root_dir, f"{digest}.{writers._hostname()}.{os.getpid()}.{self._uid}"
        )
        os.makedirs(self.spool_dir, mode=0o700, exist_ok=True)
        with _LIVE_LOCK:
            _LIVE_SPOOLS.add(os.path.realpath(self.spool_dir))
        self._framed = writers.record_framer

        # The open segment (serialized events), guarded by the base class's lock.
        self._segment: list[bytes] = []
        self._segment_bytes = 0
        # Objects the local disk refused to spool, by name (rare).
        self._memory: dict[str, bytes] = {}
        # Objects spooled, oldest first, and their bytes; guarded by _cv.
        self._cv = threading.Condition()
        self._queue: list[_Spooled] = self._adopt(root_dir, digest)
        self._queued_bytes = sum(s.size for s in self._queue)
        self._stopping = False
        self._roll_now = threading.Event()
        self._roller_done = threading.Event()
        self._upload_deadline_s = float("inf")  # monotonic; set by close
        # What the writer did, for `stats()` and the warnings.
        self.objects_uploaded = 0
        self.bytes_uploaded = 0
        self.put_requests = 0
        self.put_failures = 0
        self.dropped_events = 0
        self.dropped_bytes = 0
        self._outage_since_s: float | None = None  # monotonic
        self._outage_objects = 0
        self._spool_full_warned = False

        self._roller = threading.Thread(target=self._roll_loop, name="ttsmon-roller", daemon=True)
        self._uploader = threading.Thread(
            target=self._upload_loop, name="ttsmon-uploader", daemon=True
        )
        self._roller.start()
        self._uploader.start()

    # -- the logging side ---------------------------------------------------

    def _write_summary(self, step: int, summary: bytes, wall_time_s: float) -> None:
        data = writers._event_head(wall_time_s, step) + writers._summary_field(summary)
        self._segment.append(data)
        self._segment_bytes += len(data)
        if self._segment_bytes >= MAX_OBJECT_BYTES and not self._roll_now.is_set():
            self._roll_now.set()

    def _flush(self) -> None:
        """Nothing: data reaches the store at the next roll."""

    def _close(self) -> None:
        self._upload_deadline_s = time.monotonic() + self.close_timeout_s
        self._roll_now.set()
        self._roller.join()
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._uploader.join(self.close_timeout_s + 5.0)
        with _LIVE_LOCK:
            _LIVE_SPOOLS.discard(os.path.realpath(self.spool_dir))
        with self._cv:
            left = list(self._queue)
        if left:
            logger.warning(
                "ttsmon: %d object(s) (%d bytes) for %s not uploaded yet; they stay in %s and "
                "the next ttsmon writer of this run directory on this host uploads them",
                len(left),
                sum(s.size for s in left),
                self.url,
                self.spool_dir,
            )
        else:
            with contextlib.suppress(OSError):
                os.rmdir(self.spool_dir)
        if self.dropped_events:
            logger.warning(
                "ttsmon: %d events (%d bytes) for %s were dropped because the spool was full",
                self.dropped_events,
                self.dropped_bytes,
                self.url,
            )

    def stats(self) -> dict[str, Any]:
        """What the writer did so far: objects, PUT requests, bytes, the spool, drops."""
        with self._cv:
            spooled, spooled_bytes = len(self._queue), self._queued_bytes
        return {
            "url": self.url,
            "roll_s": self.roll_s,
            "objects_uploaded": self.objects_uploaded,
            "bytes_uploaded": self.bytes_uploaded,
            "put_requests": self.put_requests,
            "put_failures": self.put_failures,
            "spooled_objects": spooled,
            "spooled_bytes": spooled_bytes,
            "dropped_events": self.dropped_events,
            "dropped_bytes": self.dropped_bytes,
            "outage": self._outage_since_s is not None,
        }

    # -- rolling --------------------------------------------------------------

    def _roll_loop(self) -> None:
        """The roller thread: turns the open segment into a spooled object every roll_s."""
        while True:
            self._roll_now.wait(self.roll_s)
            self._roll_now.clear()
            # Read before the roll takes the lock: close() sets it under that
            # lock, so a roll that starts after it holds every event written.
            closing = self._closed
            try:
                self._roll()
            except Exception as err:  # never let the thread die: the next roll may work
                logger.warning("ttsmon: rolling an object for %s failed (%s)", self.url, err)
            if closing:  # close() asked for this last roll
                self._roller_done.set()
                return

    def _roll(self) -> None:
        with self._lock:
            events, self._segment = self._segment, []
            size, self._segment_bytes = self._segment_bytes, 0
            # The next object starts a new file: its tags carry metadata again.
            self._tags_written.clear()
        if not events:
            return
        name = self._next_name()
        buf = io.BytesIO()
        frame: Callable[[bytes], None] = self._framed(buf)
        version = event_pb2.Event(
            wall_time=time.time(),
            file_version="brain.Event:2",
            source_metadata=event_pb2.SourceMetadata(writer="tb_plugin_ttsmon"),
        )
        frame(version.SerializeToString())
        for data in events:
            frame(data)
        blob = buf.getvalue()
        with self._cv:
            room = self.spool_bytes - self._queued_bytes
        if len(blob) > room:
            self.dropped_events += len(events)
            self.dropped_bytes += size
            if not self._spool_full_warned:
                self._spool_full_warned = True
                logger.warning(
                    "ttsmon: the spool for %s is full (%d bytes waiting for the store); "
                    "new data is dropped and counted until uploads catch up",
                    self.url,
                    self.spool_bytes - room,
                )
            return
        # The spool file is the object, under a sortable prefix: in order on
        # disk too, for the writer that adopts it after a crash.
        path = os.path.join(self.spool_dir, name)
        tmp = path + ".part"
        try:
            with open(tmp, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except OSError as err:
            # The local disk failed: the object goes straight to the queue in
            # memory under the same budget (lost on kill -9, not otherwise).
            logger.warning("ttsmon: cannot spool to %s (%s); holding in memory", path, err)
            path = ""
            self._memory[name] = blob
        with self._cv:
            self._queue.append(_Spooled(name, path, len(blob)))
            self._queued_bytes += len(blob)
            self._cv.notify_all()

    def _next_name(self) -> str:
        # Whole seconds, never going back (a clock step must not reorder names).
        now_s = max(int(time.time()), self._last_name_time_s)
        self._last_name_time_s = now_s
        self._seq += 1
        name = self._name_head.format(now_s)
        return f"{name}.{self._uid:06d}-{self._seq:06d}{writers.FILENAME_SUFFIX}"

    # -- uploading ------------------------------------------------------------

    def _upload_loop(self) -> None:
        """The uploader thread: PUTs spooled objects oldest first; retries while the store fails."""
        backoff_s = 1.0
        while True:
            with self._cv:
                while not self._queue:
                    if self._stopping and self._roller_done.is_set():
                        return
                    self._cv.wait(1.0)
                item = self._queue[0]
            if self._stopping and time.monotonic() > self._upload_deadline_s:
                return
            try:
                self._upload(item)
            except Exception as err:
                self.put_failures += 1
                if self._outage_since_s is None:
                    self._outage_since_s = time.monotonic()
                    logger.warning(
                        "ttsmon: cannot upload to %s (%s: %s); events wait in the spool %s "
                        "(up to %d MiB) and upload in order when the store is back",
                        self.url,
                        type(err).__name__,
                        _short(err),
                        self.spool_dir,
                        self.spool_bytes // 2**20,
                    )
                wait_s = min(backoff_s, max(self._upload_deadline_s - time.monotonic(), 0.0))
                with self._cv:
                    self._cv.wait(wait_s)
                backoff_s = min(backoff_s * 2, _MAX_BACKOFF_S)
                continue
            backoff_s = 1.0
            with self._cv:
                self._queue.pop(0)
                self._queued_bytes -= item.size
            if item.path:
                with contextlib.suppress(OSError):
                    os.remove(item.path)
                self._remove_adopted_dir(item.path)
            if self._outage_since_s is not None:
                self._outage_objects += 1
                with self._cv:
                    caught_up = not self._queue
                if caught_up:
                    logger.warning(
                        "ttsmon: uploading to %s works again after %.0f s; %d object(s) "
                        "waited in the spool and are stored%s",
                        self.url,
                        time.monotonic() - self._outage_since_s,
                        self._outage_objects,
                        f"; {self.dropped_events} events were dropped (spool full)"
                        if self.dropped_events
                        else "",
                    )
                    self._outage_since_s = None
                    self._outage_objects = 0
                    self._spool_full_warned = False

    def _upload(self, item: _Spooled) -> None:
        if item.path:
            with open(item.path, "rb") as f:
                blob = f.read()
        else:
            blob = self._memory[item.name]
        self.put_requests += 1
        remote = f"{self._root}/{item.name}"
        self._fs.pipe_file(remote, blob)
        self.objects_uploaded += 1
        self.bytes_uploaded += len(blob)
        self.path = f"{url_scheme(self.logdir)}://{remote}"
        self._memory.pop(item.name, None)

    # -- objects of dead writers ----------------------------------------------

    def _adopt(self, root_dir: str, digest: str) -> list[_Spooled]:
        """The spooled objects that dead writers of this URL on this host left behind."""
        try:
            entries = os.listdir(root_dir)
        except OSError:
            return []
        host, pid = writers._hostname(), os.getpid()
        adopted: list[_Spooled] = []
        for entry in entries:
            if not entry.startswith(digest + "."):
                continue
            path = os.path.realpath(os.path.join(root_dir, entry))
            if path == os.path.realpath(self.spool_dir):
                continue
            try:
                owner_host, owner_pid, _uid = entry[len(digest) + 1 :].rsplit(".", 2)
                owner = int(owner_pid)
            except ValueError:
                continue
            if owner_host != host:
                continue  # a shared temporary directory: its own host uploads it
            with _LIVE_LOCK:
                live = path in _LIVE_SPOOLS
            if live or (owner != pid and _pid_alive(owner)):
                continue
            for name in os.listdir(path):
                if name.endswith(".part"):  # cut off mid-write: not a whole object
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(path, name))
                    continue
                try:
                    size = os.path.getsize(os.path.join(path, name))
                except OSError:
                    continue
                adopted.append(_Spooled(name, os.path.join(path, name), size))
        if adopted:
            logger.warning(
                "ttsmon: uploading %d object(s) that an earlier writer of %s left in the spool",
                len(adopted),
                self.url,
            )
        return sorted(adopted, key=lambda s: s.name)

    def _remove_adopted_dir(self, path: str) -> None:
        parent = os.path.dirname(path)
        if parent != self.spool_dir:
            with contextlib.suppress(OSError):
                os.rmdir(parent)  # fails while it holds more objects


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("…" if len(text) > 300 else "")
