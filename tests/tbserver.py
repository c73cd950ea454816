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

# `python -c` body: TensorBoard's main with TensorFlow and Keras unimportable
# (their imports raise ImportError, as where they are not installed).
_BLOCKED_TF_MAIN = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(name + " is blocked in this TensorBoard")
sys.meta_path.insert(0, _Block())
sys.argv[0] = "tensorboard"
from tensorboard.main import run_main
run_main()
"""


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
    block_tf: bool = False,
    env: dict[str, str] | None = None,
    log_dir: str | None = None,
    reload_interval_s: int = 1,
) -> Iterator[str]:
    """Runs `tensorboard --logdir logdir` and yields its base URL (with the prefix).

    `block_tf`: TensorFlow (and Keras) cannot be imported in the TensorBoard
    process, as in an environment without them. `env`: variables added to
    its environment. `log_dir`: where its output goes (default: `logdir`,
    which must then be local).
    """
    port = _free_port()
    launcher = ["-c", _BLOCKED_TF_MAIN] if block_tf else ["-m", "tensorboard.main"]
    args = [
        sys.executable,
        *launcher,
        f"--logdir={logdir}",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--load_fast={'true' if load_fast else 'false'}",
        f"--reload_interval={reload_interval_s}",
        *([f"--path_prefix={path_prefix}"] if path_prefix else []),
        *extra_args,
    ]
    log_path = os.path.join(log_dir or logdir, f".tensorboard-{port}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
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
