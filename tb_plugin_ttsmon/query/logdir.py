"""A log directory read outside TensorBoard: `ttsmon export`, `ttsmon report`, the seed's charts.

The logdir is loaded once by TensorBoard's own Python loader (the
multiplexer, every ttsmon point kept) and read through its data provider,
the same interface the plugin reads under either loader, so every consumer
sees what the tab sees.
"""

from __future__ import annotations

import tempfile
from typing import Any

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.query.reader import Reader


class LogdirData:
    """A logdir loaded once (every point kept) and read through `Reader`.

    A logdir in an object store (``s3://bucket/exp1``) is first copied into a
    temporary directory, event files only (`remote.fetch_event_files`), which
    lives as long as this object; `logdir` keeps the URL.
    """

    def __init__(self, logdir: str) -> None:
        from tensorboard.backend.event_processing import data_provider as mdp
        from tensorboard.backend.event_processing import plugin_event_multiplexer
        from tensorboard.context import RequestContext

        from tb_plugin_ttsmon import stores

        self.logdir = logdir
        local = logdir
        self._copy: tempfile.TemporaryDirectory[str] | None = None
        if stores.is_remote(logdir):
            from tb_plugin_ttsmon.query import remote

            self._copy = tempfile.TemporaryDirectory(prefix="ttsmon-logdir-")
            local = self._copy.name
            remote.fetch_event_files(logdir, local)
        mux = plugin_event_multiplexer.EventMultiplexer(
            tensor_size_guidance={metadata.PLUGIN_NAME: 0}  # 0: keep every point
        )
        mux.AddRunsFromDirectory(local)
        mux.Reload()
        self.provider = mdp.MultiplexerDataProvider(mux, local)
        self.reader = Reader(self.provider, RequestContext(), "")
        self._runs: list[dict[str, Any]] | None = None

    def runs(self) -> list[dict[str, Any]]:
        """`Reader.runs()` entries (run, hostname, facts, ...), by run name."""
        if self._runs is None:
            self._runs = self.reader.runs()["runs"]
        return self._runs

    def run_names(self) -> list[str]:
        """Names of the runs holding ttsmon data."""
        return [r["run"] for r in self.runs()]
