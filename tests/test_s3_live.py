"""End to end: a job writes to S3 for a minute through a 10 s outage; TensorBoard serves the bucket.

* moto's S3 server runs on loopback; the job reaches it through a TCP proxy
  that the test cuts for 10 s in the middle of the run, the TensorBoard
  directly (the outage is between the job and the store).
* The job is a real process with the recorder (`Monitor("s3://...")`,
  rolling objects every 5 s, TensorFlow importable: its file layer has no
  ``s3://``, so the object writer serves it).
* The TensorBoard runs where TensorFlow cannot be imported (its own file
  layer then reads ``s3://`` with boto3), with the Python loader (the Rust
  one reads local and ``gs://`` only).
* A Chromium keeps the TTS Monitor tab open on it.

The tests check what the user sees: the run grows in TensorBoard while the
job runs, every logged step is in the tab once and in order after the
outage, the job never waited for the store, and the job's log says one
WARNING at the fault and one at the recovery.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from browserkit import SKIPS, Tab, api_url, get_json
from s3server import SECRET_KEY, CuttableProxy, s3_server
from tbserver import tensorboard_server

pytestmark = SKIPS

BUCKET = "team-logs"
RUN = "rank0"  # s3://team-logs/exp1/rank0 under the logdir s3://team-logs/exp1
JOB_S = 60.0
ROLL_S = 5.0
RELOAD_S = 2
CUT_AT_S, OUTAGE_S = 20.0, 10.0

_JOB = textwrap.dedent(
    """
    import json, sys, time
    import tb_plugin_ttsmon as ttsmon
    url, seconds, roll_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    mon = ttsmon.Monitor(url, interval=1.0, roll_s=roll_s, gpus=False)
    start = time.monotonic()
    step, max_call_s = 0, 0.0
    while time.monotonic() - start < seconds:
        t0 = time.perf_counter()
        mon.log_training(step, loss=2.0 / (step + 1), learning_rate=1e-3)
        max_call_s = max(max_call_s, time.perf_counter() - t0)
        print("STEP", step, repr(time.time()), flush=True)
        step += 1
        time.sleep(0.05)
    stats = mon.object_store_stats
    mon.close()
    print("DONE", json.dumps({"steps": step, "max_call_s": max_call_s,
                              "writer": mon.writer_name, "stats": stats}), flush=True)
    """
)


class Job:
    """The job process, its logged steps (step -> wall time) read from its output as it runs."""

    def __init__(self, script: Path, url: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), url, str(JOB_S), str(ROLL_S)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        self.logged: dict[int, float] = {}
        self.done: dict[str, Any] | None = None
        self.stderr = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("STEP "):
                _, step, wall = line.split()
                self.logged[int(step)] = float(wall)
            elif line.startswith("DONE "):
                self.done = json.loads(line[5:])

    def wait(self) -> int:
        _, self.stderr = self.proc.communicate(timeout=JOB_S + 120)
        self._reader.join(10)
        return self.proc.returncode


def _last_step(tb_url: str) -> int | None:
    status, body = get_json(api_url(tb_url, "series", [("run", RUN), ("tag", "train/loss")]))
    if status != 200 or not body:
        return None
    return body["series"].get("train/loss", {}).get("last_step")


def test_a_job_writing_to_s3_through_an_outage_is_live_and_whole_in_the_tab(
    browser: Any, tmp_path: Path
) -> None:
    with s3_server(str(tmp_path)) as s3, CuttableProxy(s3.port) as proxy:
        s3.create_bucket(BUCKET)
        script = tmp_path / "job.py"
        script.write_text(_JOB)
        job = Job(script, f"s3://{BUCKET}/exp1/{RUN}", proxy.env())
        started = time.monotonic()
        with tensorboard_server(
            f"s3://{BUCKET}/exp1",
            load_fast=False,
            block_tf=True,
            env=s3.env(),
            log_dir=str(tmp_path),
            reload_interval_s=RELOAD_S,
        ) as url:
            # Observations while the job runs: (time, newest step TensorBoard
            # serves, newest step the job had logged by then).
            seen: list[tuple[float, int | None]] = []
            tab: Tab | None = None
            cut = restored = None
            try:
                while job.proc.poll() is None:
                    now = time.monotonic() - started
                    if cut is None and now >= CUT_AT_S:
                        proxy.cut()
                        cut = time.time()
                    if cut is not None and restored is None and now >= CUT_AT_S + OUTAGE_S:
                        proxy.restore()
                        restored = time.time()
                    seen.append((time.time(), _last_step(url)))
                    if tab is None and seen[-1][1] is not None:
                        tab = Tab(browser, url)  # opened once the run exists, kept open
                    time.sleep(0.5)
                assert job.wait() == 0, job.stderr[-3000:]
                assert job.done is not None
                steps = job.done["steps"]
                assert tab is not None, "TensorBoard never showed the run while the job ran"

                # After the job: every logged step reaches the open tab, once, in order.
                deadline = time.monotonic() + ROLL_S + 60
                held: dict[str, Any] | None = None
                while time.monotonic() < deadline:
                    held = tab.frame.evaluate(
                        "([run, tag]) => window.__ttsmonLive.series(run, tag)",
                        [RUN, "train/loss"],
                    )
                    if held and held["step"] and held["step"][-1] == steps - 1:
                        break
                    tab.page.wait_for_timeout(1000)
                assert held is not None
                assert held["step"] == list(range(steps))
                assert held["value"] == pytest.approx([2.0 / (s + 1) for s in range(steps)])
                tab.page.wait_for_timeout(500)
                tab.screenshot(tmp_path / "s3-live.png")
                tab.screenshot("/tmp/ttsmon-s3-live.png")
                text = tab.frame.locator("body").inner_text()
                assert RUN in text
                assert tab.errors == []
            finally:
                if tab is not None:
                    tab.close()
            tb_log = "".join(p.read_text(errors="replace") for p in tmp_path.glob(".tensorboard-*"))

    # The run grew in TensorBoard while the job ran, not only at its end.
    grown = sorted({s for _, s in seen if s is not None})
    assert len(grown) >= 5, grown
    # The job never waited for the store: it kept logging through the outage.
    assert cut is not None and restored is not None
    during = [s for s, wall in job.logged.items() if cut <= wall <= restored]
    assert len(during) >= 0.5 * OUTAGE_S / 0.05, len(during)
    assert job.done["max_call_s"] < 1.0, job.done
    assert job.done["writer"] == "object"
    # One WARNING at the fault, one at the recovery; no credentials anywhere.
    assert job.stderr.count("cannot upload to s3://") == 1, job.stderr[-3000:]
    assert job.stderr.count("works again") == 1, job.stderr[-3000:]
    assert SECRET_KEY not in job.stderr and SECRET_KEY not in tb_log
    # The plugin served all this in a TensorBoard without TensorFlow.
    assert "tb_plugin_ttsmon" not in "".join(block for block in tb_log.split("Traceback")[1:]), (
        tb_log[-3000:]
    )

    # How fresh the view was, outside the outage: the age of the newest step
    # TensorBoard served (measured; the bound is roll_s + reload + a poll).
    ages = [
        t - job.logged[s]
        for t, s in seen
        if s is not None and s in job.logged and not (cut - ROLL_S <= t <= restored + ROLL_S)
    ]
    print(
        json.dumps(
            {
                "steps": steps,
                "objects": job.done["stats"]["objects_uploaded"],
                "put_requests": job.done["stats"]["put_requests"],
                "max_log_call_ms": round(job.done["max_call_s"] * 1000, 2),
                "view_age_s_median": round(statistics.median(ages), 2) if ages else None,
                "view_age_s_max": round(max(ages), 2) if ages else None,
                "roll_s": ROLL_S,
                "reload_s": RELOAD_S,
            }
        )
    )
