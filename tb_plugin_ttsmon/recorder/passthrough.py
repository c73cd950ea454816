"""A child's output, passed through unchanged while its lines are read (``ttsmon watch --parse``).

One thread per stream (stdout, stderr) reads whatever the pipe holds and
writes it to our own stream at once, bytes unchanged (``\\r`` of progress
bars, partial lines and invalid UTF-8 included), and only then hands the
complete lines to the parser. The child is never held back by parsing: a
write reaches the terminal before its line is looked at, and a slow or
closed terminal of ours never stops the pipe from being drained.

Lines end at ``\\n`` or ``\\r`` (tqdm redraws its bar with ``\\r``); both
streams feed one parser, in the order their reads arrive, because a model
may print some timers and log others.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from typing import Any, BinaryIO

from tb_plugin_ttsmon.recorder.faults import logger

READ_BYTES = 65536
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class Passthrough:
    """Pumps `child`'s stdout and stderr (opened as pipes) into ours and into `parser`.

    Args:
      child: The process, started with ``stdout=PIPE, stderr=PIPE``.
      parser: Has ``feed(line: str)`` and ``close()`` (a `logparse.BlockParser`).
      stdout, stderr: Where the output goes (default: this process's).
    """

    def __init__(
        self,
        child: subprocess.Popen[bytes],
        parser: Any,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> None:
        self._parser = parser
        self._lock = threading.Lock()  # one feeder at a time: the parser is not thread-safe
        self._threads = []
        for pipe, out in (
            (child.stdout, stdout or sys.stdout.buffer),
            (child.stderr, stderr or sys.stderr.buffer),
        ):
            if pipe is None:
                continue
            t = threading.Thread(target=self._pump, args=(pipe, out), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, pipe: BinaryIO, out: BinaryIO) -> None:
        fd = pipe.fileno()
        out_fd: int | None
        try:
            out_fd = out.fileno()
        except (OSError, ValueError, AttributeError):
            out_fd = None  # not a real file (a test's buffer): write() it
        rest = b""
        broken = False
        while True:
            try:
                chunk = os.read(fd, READ_BYTES)
            except OSError:
                break
            if not chunk:
                break
            if not broken:
                broken = not _write_all(out, out_fd, chunk)
            lines = _LINE_BREAK.split(rest + chunk)
            rest = lines.pop()
            if lines:
                self._feed(lines)
        if rest:
            self._feed([rest])
        pipe.close()

    def _feed(self, lines: list[bytes]) -> None:
        with self._lock:
            for raw in lines:
                try:
                    self._parser.feed(raw.decode("utf-8", "replace"))
                except Exception as err:  # a parser bug must not stop the pipe
                    logger.warning("ttsmon watch --parse: a line could not be parsed (%s)", err)

    def finish(self, timeout_s: float = 10.0) -> None:
        """Waits for both streams to end (the child exited), then ends the parser's last block."""
        for t in self._threads:
            t.join(timeout_s)
        with self._lock:
            self._parser.close()


def _write_all(out: BinaryIO, fd: int | None, data: bytes) -> bool:
    """Writes `data` whole; False when our stream is gone (the child's output is still drained)."""
    try:
        if fd is None:
            out.write(data)
            out.flush()
            return True
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        return True
    except (BrokenPipeError, OSError, ValueError):
        return False
