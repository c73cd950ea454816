"""A real `tensorboard` process on 127.0.0.1, for end-to-end tests.

Usage::

    with tensorboard_server(logdir, load_fast=True) as url:   # url ends with "/"
        urllib.request.urlopen(url + "data/plugin/ttsmon/runs")
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator


def _tail(path: str) -> str:
    with open(path, errors="replace") as f:
        return f.read()[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def tensorboard_server(
    logdir: str,
    *,
    load_fast: bool = True,
    path_prefix: str = "",
    extra_args: tuple[str, ...] = (),
    timeout_s: float = 90.0,
) -> Iterator[str]:
    """Runs `tensorboard --logdir logdir` and yields its base URL (with the prefix)."""
    port = _free_port()
    args = [
        sys.executable,
        "-m",
        "tensorboard.main",
        f"--logdir={logdir}",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--load_fast={'true' if load_fast else 'false'}",
        "--reload_interval=1",
        *([f"--path_prefix={path_prefix}"] if path_prefix else []),
        *extra_args,
    ]
    log_path = os.path.join(logdir, f".tensorboard-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}{path_prefix}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"tensorboard exited: {_tail(log_path)}")
            try:
                with urllib.request.urlopen(url + "data/plugins_listing", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tensorboard did not start: {_tail(log_path)}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
