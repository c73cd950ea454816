"""The `ttsmon` command line, run as a user runs it: in a subprocess.

Logdirs are written with the real recorder (TF-free writer) and read back
through TensorBoard's Python loader.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import tbdata

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.monitor import Monitor

HOSTILE = 'ሰላም <b>&"x"'  # an Amharic run name with HTML in it
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONIOENCODING": "utf-8"}


def ttsmon(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tb_plugin_ttsmon.cli", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        env=ENV,
    )


def ttsmon_popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tb_plugin_ttsmon.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=ENV,
    )


def last_error_line(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """Two runs (one with a hostile name): training with a NaN, inference, a profile doc."""
    root = tmp_path_factory.mktemp("logs")
    for name in ("plain", HOSTILE):
        with Monitor(root / name, interval=0.1, writer="event", gpus=False) as mon:
            for step in range(20):
                loss = float("nan") if step == 12 else 2.0 / (step + 1)
                mon.log_training(
                    step, loss=loss, learning_rate=1e-3 * 0.9**step, gradient_norm=1 + step / 10
                )
                mon.log_inference(
                    latency_ms=40 + step % 5 * 10,
                    audio_seconds=0.1 if step % 4 else 0.02,
                    stages={"gpt": 30.0, "vocoder": 8.0},
                )
                time.sleep(0.03)
            now = time.time()
            mon._write_profile(
                now,
                {
                    "session": "2026_01_01_00_00_00",
                    "session_dir": "plugins/profile/2026_01_01_00_00_00",
                    "hosts": [],
                    "trigger": "steps",
                    "start_wall_time_s": now - 1,
                    "stop_wall_time_s": now,
                    "start_step": 5,
                    "stop_step": 8,
                    "status": "ok",
                    "files": [],
                },
            )
    return str(root)


# -- watch ----------------------------------------------------------------------------------------

BUSY_CHILD = (
    "import os, sys, time\n"
    "print(os.getpid(), flush=True)\n"
    "end = time.monotonic() + 1.5\n"
    "while time.monotonic() < end: pass\n"
    "sys.exit(3)\n"
)


def test_watch_command_returns_its_exit_code_and_records_the_child(tmp_path):
    run = tmp_path / "job"
    r = ttsmon(
        "watch",
        "--logdir",
        str(run),
        "--interval",
        "0.1",
        "--no-gpus",
        "--",
        sys.executable,
        "-c",
        BUSY_CHILD,
    )
    assert r.returncode == 3, r.stderr
    child_pid = int(r.stdout.split()[0])
    with tbdata.python_provider(str(tmp_path)) as provider:
        scalars = tbdata.read_scalars(provider, "job")
        facts = tbdata.read_documents(provider, "job", metadata.RUN_FACTS_TAG)
    assert facts[-1]["recorder"]["monitored_pid"] == child_pid
    assert facts[-1]["recorder"]["writer"] == "event"
    cpu = scalars["process/cpu_percent"].values
    assert cpu and max(cpu) > 10  # the busy loop, not the idle ttsmon process
    assert scalars["process/rss_bytes"].values


def test_watch_pid_returns_0_when_the_process_ends(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    try:
        watcher = ttsmon_popen(
            "watch", "--logdir", str(tmp_path / "pid"), "--interval", "0.1", "--pid", str(child.pid)
        )
        assert child.wait(timeout=30) == 0  # reaped here: it is this process's child
        _, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 0, err
    finally:
        child.kill()
    with tbdata.python_provider(str(tmp_path)) as provider:
        facts = tbdata.read_documents(provider, "pid", metadata.RUN_FACTS_TAG)
        scalars = tbdata.read_scalars(provider, "pid")
    assert facts[-1]["recorder"]["monitored_pid"] == child.pid
    assert "process/rss_bytes" in scalars


def test_watch_forwards_sigterm_to_the_command(tmp_path):
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(5))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    watcher = ttsmon_popen(
        "watch", "--logdir", str(tmp_path / "sig"), "--no-gpus", "--", sys.executable, "-c", script
    )
    try:
        assert watcher.stdout is not None
        assert watcher.stdout.readline().strip() == "ready"
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=30)
    finally:
        watcher.kill()
    assert watcher.returncode == 5


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["watch", "--", sys.executable, "-c", "pass"], "--logdir"),
        (["watch", "--logdir", "L", "--pid", "1", "--", "true"], "not both"),
        (["watch", "--logdir", "L"], "--pid PID, or -- COMMAND"),
        (["watch", "--logdir", "L", "--interval", "-1", "--", "true"], "interval"),
        (["watch", "--logdir", "L", "--pid", "abc"], "not a process id"),
    ],
)
def test_watch_bad_arguments_exit_2_with_one_line(tmp_path, args, says):
    args = [str(tmp_path / "L") if a == "L" else a for a in args]
    r = ttsmon(*args)
    assert r.returncode == 2
    lines = last_error_line(r.stderr)
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("ttsmon watch: error:") and says in lines[0]
    assert not (tmp_path / "L").exists()  # nothing started, nothing written


def test_every_subcommand_has_help():
    for sub in ("watch", "export", "report"):
        r = ttsmon(sub, "--help")
        assert r.returncode == 0
        assert r.stdout.startswith(f"usage: ttsmon {sub}")


# -- export ---------------------------------------------------------------------------------------


def test_export_all_runs_csv_to_file_and_json_to_stdout(logdir, tmp_path):
    out = tmp_path / "all.csv"
    r = ttsmon("export", logdir, "--format", "csv", "-o", str(out))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8"))))
    assert list(rows[0]) == ["run", "tag", "unit", "kind", "wall_time_s", "step", "value"]
    assert {row["run"] for row in rows} == {"plain", HOSTILE}
    losses = [row for row in rows if row["run"] == HOSTILE and row["tag"] == "train/loss"]
    assert len(losses) == 20 and [row["value"] for row in losses].count("nan") == 1

    r = ttsmon("export", logdir, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [d["run"] for d in doc["runs"]] == sorted(["plain", HOSTILE])
    rows_json = doc["runs"][0]["series"]["train/loss"]["rows"]
    assert len(rows_json) == 20 and [v for _, _, v in rows_json].count("NaN") == 1


def test_export_one_run_has_the_plugin_shape(logdir, tmp_path):
    out = tmp_path / "one.json"
    r = ttsmon("export", logdir, "--run", HOSTILE, "--format", "json", "-o", str(out))
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text("utf-8"))
    assert doc["run"] == HOSTILE and doc["facts"]["hostname"]
    assert "process/rss_bytes" in doc["series"]

    r = ttsmon("export", logdir, "--run", "plain", "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("tag,unit,kind,wall_time_s,step,value\n")


def test_export_bad_arguments_exit_2(logdir, tmp_path):
    r = ttsmon("export", logdir, "--run", "nope", "--format", "csv")
    assert r.returncode == 2 and r.stdout == ""
    (line,) = last_error_line(r.stderr)
    assert "no run 'nope'" in line and "plain" in line

    r = ttsmon("export", str(tmp_path / "missing"), "--format", "json")
    assert r.returncode == 2
    (line,) = last_error_line(r.stderr)
    assert "is not a directory" in line

    r = ttsmon("export", logdir, "--format", "xml")
    assert r.returncode == 2
    (line,) = last_error_line(r.stderr)
    assert "invalid choice: 'xml'" in line


# -- report ---------------------------------------------------------------------------------------

SECTIONS = (
    "facts",
    "system",
    "training",
    "inference",
    "alerts",
    "anomalies",
    "findings",
    "profiles",
)


@pytest.fixture(scope="module")
def report_file(logdir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    r = ttsmon("report", logdir, "-o", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_report_holds_every_section_escaped(report_file):
    text = report_file.read_text("utf-8")
    assert '<meta charset="utf-8">' in text
    assert '"Noto Sans Ethiopic"' in text and '"Abyssinica SIL"' in text
    for i in range(2):
        for key in SECTIONS:
            assert f'id="run-{i}-{key}"' in text
    assert html.escape(HOSTILE) in text
    assert "<b>&" not in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # self-contained
    assert "<script" not in text
    images = re.findall(r'<img [^>]*src="([^"]*)"', text)
    assert len(images) >= 10 and all(s.startswith("data:image/png;base64,") for s in images)
    # What the data holds shows up in words.
    assert "loss_not_finite" in text  # the alert
    assert "train/loss is NaN at step 12" in text  # the anomaly
    assert "The loss became NaN or infinite" in text  # the finding
    assert "2026_01_01_00_00_00" in text  # the profile session
    assert "p95 latency (ms)" in text and "Real-time factor" in text


def test_report_renders_in_chromium(report_file, tmp_path, browser):
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.goto(report_file.as_uri())
        widths = page.evaluate("Array.from(document.images, i => i.complete && i.naturalWidth)")
        headings = page.locator("h2").all_inner_texts()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        page.close()
    assert errors == []
    assert widths and all(w and w > 0 for w in widths)
    assert headings == ["Run plain", f"Run {HOSTILE}"]
