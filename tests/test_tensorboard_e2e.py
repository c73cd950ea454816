"""A real `tensorboard` process over a logdir the recorder writes: both loaders, a path prefix."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
from tbserver import tensorboard_server

import tb_plugin_ttsmon as ttsmon

RUN = "ሙከራ/host-a"


def _get_json(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.status == 200
        return json.loads(r.read().decode("utf-8"))


@pytest.mark.parametrize(
    ("load_fast", "prefix"),
    [(True, ""), (False, ""), (True, "/tb")],
    ids=["rust", "python", "prefix"],
)
def test_tab_is_listed_and_live_data_arrives(tmp_path, load_fast, prefix):
    logdir = tmp_path / "logs"
    mon = ttsmon.Monitor(logdir / RUN, interval=0.2, writer="event", flush_s=0.5, gpus=False)
    try:
        mon.log_training(1, loss=2.0)
        with tensorboard_server(str(logdir), load_fast=load_fast, path_prefix=prefix) as url:
            listing = _get_json(url + "data/plugins_listing")
            entry = listing["ttsmon"]
            assert entry["tab_name"] == "TTS Monitor"
            assert entry["loading_mechanism"] == {
                "type": "IFRAME",
                "module_path": f"{prefix}/data/plugin/ttsmon/index.js",
            }
            # Data logged while TensorBoard runs shows up (bounded wait, not a timing check).
            mon.log_training(2, loss=1.5)
            query = urllib.parse.urlencode({"run": RUN, "tag": "train/loss"})
            deadline = time.monotonic() + 60
            steps: list[int] = []
            while time.monotonic() < deadline and steps != [1, 2]:
                time.sleep(0.5)
                try:
                    body = _get_json(url + "data/plugin/ttsmon/series?" + query)
                except urllib.error.HTTPError:
                    continue  # run not loaded yet
                steps = [r[1] for r in body["series"]["train/loss"]["rows"]]
            assert steps == [1, 2]
            # Active because the data provider lists ttsmon data (is_active() says False).
            assert _get_json(url + "data/plugins_listing")["ttsmon"]["enabled"] is True
            runs = _get_json(url + "data/plugin/ttsmon/runs")["runs"]
            assert [r["run"] for r in runs] == [RUN]
    finally:
        mon.close()
