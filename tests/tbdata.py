"""Reading event files back through TensorBoard's own loaders, as the plugin will.

`python_provider` is the Python loader (`--load_fast=false`): an
EventMultiplexer behind `MultiplexerDataProvider`. `rust_provider` starts
TensorBoard's Rust data server (`--load_fast=true`, the default for most
users) and talks to it over gRPC. Both keep every point (no downsampling).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from tensorboard import context
from tensorboard.backend.event_processing import data_provider as mdp
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.data import server_ingester
from tensorboard.util import grpc_util

from tb_plugin_ttsmon import metadata

ALL = 10**7


@contextlib.contextmanager
def python_provider(logdir: str) -> Iterator[Any]:
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={metadata.PLUGIN_NAME: 0})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    yield mdp.MultiplexerDataProvider(mux, logdir)


@contextlib.contextmanager
def rust_provider(logdir: str) -> Iterator[Any]:
    ingester = server_ingester.SubprocessServerDataIngester(
        server_ingester.get_server_binary(),
        logdir,
        reload_interval=0,  # load once, then serve
        channel_creds_type=grpc_util.ChannelCredsType.LOCAL,
        samples_per_plugin={metadata.PLUGIN_NAME: 0},
    )
    ingester.start()
    provider = ingester.data_provider
    # With --reload=once the server answers once its first load finished;
    # ask until the run list is stable.
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = provider.list_runs(context.RequestContext(), experiment_id="")
        if runs:
            break
        time.sleep(0.2)
    try:
        yield provider
    finally:
        popen = getattr(ingester, "_stdin_handle", None)
        if popen is not None:
            popen.close()  # the server exits when its stdin closes


@dataclasses.dataclass
class Series:
    unit: str
    kind: str
    points: list[tuple[int, float, float]]  # (step, wall_time, value)

    @property
    def values(self) -> list[float]:
        return [p[2] for p in self.points]

    @property
    def steps(self) -> list[int]:
        return [p[0] for p in self.points]


def read_scalars(provider: Any, run: str) -> dict[str, Series]:
    ctx = context.RequestContext()
    listing = provider.list_scalars(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME)
    tags = listing.get(run, {})
    data = provider.read_scalars(
        ctx,
        experiment_id="",
        plugin_name=metadata.PLUGIN_NAME,
        downsample=ALL,
        run_tag_filter=None,
    ).get(run, {})
    out = {}
    for tag, ts in tags.items():
        payload = metadata.parse_plugin_metadata(ts.plugin_content)
        out[tag] = Series(
            payload.unit,
            payload.kind,
            [(d.step, d.wall_time, d.value) for d in data.get(tag, [])],
        )
    return out


def read_documents(provider: Any, run: str, tag: str) -> list[Any]:
    ctx = context.RequestContext()
    data = provider.read_tensors(
        ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME, downsample=ALL
    ).get(run, {})
    out = []
    for datum in data.get(tag, []):
        arr = datum.numpy
        out.append(metadata.decode_document(arr.item() if hasattr(arr, "item") else arr))
    return out


def raw_events(logdir: str) -> list[Any]:
    """Every event of every event file under `logdir`, in file order."""
    import glob
    import os

    from tensorboard.backend.event_processing import event_file_loader

    events = []
    for path in sorted(glob.glob(os.path.join(logdir, "**", "*tfevents*"), recursive=True)):
        events.extend(event_file_loader.RawEventFileLoader(path).Load())
    from tensorboard.compat.proto import event_pb2

    return [event_pb2.Event.FromString(e) for e in events]
