"""A real S3-compatible server on loopback (moto's), and a TCP proxy that can be cut.

Usage::

    with s3_server() as s3:                 # moto's server in its own process
        s3.create_bucket("team-logs")
        env = s3.env()                      # AWS_* variables for a client
        with CuttableProxy(s3.port) as proxy:
            proxy.env()                     # the same, through the proxy
            proxy.cut(); ...; proxy.restore()

The credentials are moto's dummies; they must never show up in what the
recorder writes or logs (the tests check).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

# Dummy credentials for moto; tests check they never leak into logs or facts.
ACCESS_KEY = "AKIATTSMONTESTKEY000"
SECRET_KEY = "ttsmon-test-secret-do-not-log-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aws_env(endpoint_url: str) -> dict[str, str]:
    """The ordinary AWS variables that point a client (boto3, s3fs) at `endpoint_url`."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint_url,
        # No instance-metadata lookups on a machine without network.
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class S3Server:
    """A running moto server: its port, endpoint and a boto3 client."""

    def __init__(self, port: int, log_path: str) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def env(self) -> dict[str, str]:
        return aws_env(self.endpoint)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def objects(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """The objects under `prefix`, by key (Key, Size, ETag, LastModified)."""
        out: list[dict[str, Any]] = []
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            out.extend(page.get("Contents", []))
        return sorted(out, key=lambda o: o["Key"])

    def get(self, bucket: str, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    recording: str | None = None

    def requests(self) -> list[dict[str, Any]]:
        """The requests answered so far (with `record=True`): method, url, agent, body bytes."""
        import base64
        import json

        if not self.recording or not os.path.exists(self.recording):
            return []
        out = []
        with open(self.recording) as f:
            for line in f:
                entry = json.loads(line)
                body = entry.get("body") or ""
                size = len(base64.b64decode(body)) if entry.get("body_encoded") else len(body)
                headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
                out.append(
                    {
                        "method": entry["method"],
                        "url": entry["url"],
                        "agent": headers.get("user-agent", ""),
                        "body_bytes": size,
                    }
                )
        return out

    def reset_requests(self) -> None:
        if self.recording:
            open(self.recording, "w").close()


@contextlib.contextmanager
def s3_server(log_dir: str, *, record: bool = False) -> Iterator[S3Server]:
    """Starts ``python -m moto.server`` on a free loopback port; stops it after.

    `record`: the server logs every request it answers (moto's recorder) to
    a file in `log_dir`; `S3Server.requests()` reads it.
    """
    port = _free_port()
    log_path = os.path.join(log_dir, f"moto-{port}.log")
    env = dict(os.environ)
    if record:
        env["MOTO_ENABLE_RECORDING"] = "True"
        env["MOTO_RECORDER_FILEPATH"] = os.path.join(log_dir, f"moto-{port}.requests")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = S3Server(port, log_path)
    server.recording = env.get("MOTO_RECORDER_FILEPATH")
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                with open(log_path, errors="replace") as f:
                    raise RuntimeError(f"moto server exited: {f.read()[-2000:]}")
            try:
                with urllib.request.urlopen(server.endpoint + "/moto-api/", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class CuttableProxy:
    """A TCP proxy from a loopback port to `target_port`, with an off switch.

    `cut()` is a network partition as a client sees it: open connections are
    reset and new ones refused. `restore()` listens again on the same port.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.connections = 0
        self.restore()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return aws_env(self.endpoint)

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = set(self._conns), set()
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                # SO_LINGER 0: close sends a reset, as a broken path would.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> CuttableProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)
