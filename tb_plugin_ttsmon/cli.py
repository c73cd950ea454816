"""The `ttsmon` command line: `watch`, `export` and `report`.

Parsing and process handling live here; reading logs and drawing the report
live in `tb_plugin_ttsmon.report`, imported only by the subcommands that need
it (so `ttsmon watch` never loads TensorBoard's loaders or matplotlib).
"""

from __future__ import annotations

import argparse
import importlib.abc
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

from tb_plugin_ttsmon.version import VERSION

# Exit codes: 2 for bad arguments (argparse's own), 127 for a command that
# cannot be started (as a shell does), 128 + N for a child killed by signal N.
EXIT_USAGE = 2
EXIT_NOT_FOUND = 127
# How often `watch --pid` checks that the process is still there.
PID_POLL_S = 0.2


class UsageError(Exception):
    """A bad argument found after parsing: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive_interval(text: str) -> float:
    from tb_plugin_ttsmon.recorder.sampler import check_interval

    try:
        return check_interval(float(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {port}")
    return port


def _pid(text: str) -> int:
    try:
        pid = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a process id: {text!r}") from None
    if pid <= 0:
        raise argparse.ArgumentTypeError(f"a process id is a positive integer, got {pid}")
    return pid


def build_parser() -> argparse.ArgumentParser:
    """The `ttsmon` parser with its three subcommands."""
    parser = _Parser(
        prog="ttsmon",
        description="Record, export and report TTS training and inference metrics "
        "(the ttsmon TensorBoard plugin's command line).",
    )
    parser.add_argument("--version", action="version", version=f"ttsmon {VERSION}")
    sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

    watch = sub.add_parser(
        "watch",
        help="record the system, process-tree and GPU metrics of a process",
        description="Record the system, process-tree and GPU metrics of a program into a "
        "TensorBoard run directory until it exits. Either start COMMAND (after --) and "
        "return its exit code, or watch a running process with --pid and return 0 when it "
        "ends. SIGINT and SIGTERM are passed on to COMMAND.",
        usage="ttsmon watch --logdir DIR [--interval S] [--no-gpus] [--parse FORMAT]\n"
        "                    [--parse-pattern NAME=REGEX ...] [--prometheus-port N]\n"
        "                    [--roll-s S] [--spool-mib M]\n"
        "                    (--pid PID | -- COMMAND ARGS...)",
    )
    watch.add_argument(
        "--logdir",
        required=True,
        metavar="DIR",
        help="the run directory: a path, or an object store URL (s3://bucket/exp1/rank0)",
    )
    watch.add_argument(
        "--roll-s",
        type=float,
        default=30.0,
        metavar="S",
        help="for an object store: seconds between event-file objects (default 30)",
    )
    watch.add_argument(
        "--spool-mib",
        type=float,
        default=256.0,
        metavar="M",
        help="for an object store: most MiB waiting on local disk during an outage (default 256)",
    )
    watch.add_argument(
        "--interval",
        type=_positive_interval,
        default=1.0,
        metavar="S",
        help="seconds between samples, at least 0.1 (default 1)",
    )
    watch.add_argument("--pid", type=_pid, help="watch this running process instead")
    watch.add_argument("--no-gpus", action="store_true", help="do not sample GPUs through NVML")
    watch.add_argument(
        "--parse",
        metavar="FORMAT",
        help="record inference requests from COMMAND's own timer lines; FORMAT is a model "
        "family's log format (indextts2). Its output passes through unchanged",
    )
    watch.add_argument(
        "--parse-pattern",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="a timer line of your own: NAME is a stage (its seconds; NAME_ms for "
        "milliseconds), total, audio or rtf; REGEX's first group is the number (repeatable)",
    )
    watch.add_argument(
        "--prometheus-port",
        type=_port,
        metavar="N",
        help="serve /metrics for Prometheus on this port (request, stage and first-audio "
        "latency histograms, RTF, counters, the latest system and GPU samples)",
    )
    watch.add_argument(
        "--prometheus-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="the address /metrics binds (default 127.0.0.1)",
    )

    export = sub.add_parser(
        "export",
        help="write a logdir's ttsmon data as CSV or JSON",
        description="Write every kept point of a logdir's ttsmon data as one file (stdout "
        "without -o). With --run: the plugin's export of that run. Without: every run, "
        'CSV with a leading "run" column, JSON as {"runs": [...]}.',
    )
    export.add_argument("logdir", metavar="DIR", help="a TensorBoard log directory")
    export.add_argument("--run", metavar="R", help="only this run (default: all)")
    export.add_argument("--format", required=True, choices=("csv", "json"))
    export.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")

    report = sub.add_parser(
        "report",
        help="write a self-contained static HTML report",
        description="Write one self-contained HTML file (charts embedded, no network, no "
        "JavaScript) with each run's facts, system, training and inference charts, alerts, "
        "anomalies, findings and profiler sessions.",
    )
    report.add_argument("logdir", metavar="DIR", help="a TensorBoard log directory")
    report.add_argument(
        "-o", "--output", metavar="FILE", default="report.html", help="default: report.html"
    )
    compare = sub.add_parser(
        "compare",
        help="compare two runs: setup differences, speed with an interval, memory, a verdict",
        description="Compare RUN_B against RUN_A: every difference in their run and model "
        "facts, the median time per training step with a 95 %% bootstrap interval of the "
        "ratio (warm-up left out), peak and median GPU and host memory, GPU utilization, "
        "inference latency and RTF where both have them, and a one-line verdict.",
    )
    compare.add_argument("logdir", metavar="DIR", help="a TensorBoard log directory (or URL)")
    compare.add_argument("run_a", metavar="RUN_A", help="the reference run")
    compare.add_argument("run_b", metavar="RUN_B", help="the run compared against it")
    compare.add_argument("--format", choices=("text", "json"), default="text")
    compare.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    return parser


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Splits `watch ... -- COMMAND ARGS` at the first ``--`` (None: no ``--``)."""
    if argv and argv[0] == "watch" and "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, None


# -- watch ----------------------------------------------------------------------------------------


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    """Makes `tensorflow` unimportable in this process.

    No subcommand needs it: `watch` measures another process (TensorFlow here
    would describe nothing of the job) and export / report read local files,
    which TensorBoard's TF-free file layer does. Yet TensorBoard imports it
    when installed (`tensorboard.compat.tf`), costing seconds, hundreds of MB
    and lines of log noise on stderr; for `watch`, before the first sample,
    while a short job may already be over.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".", 1)[0] == "tensorflow":
            raise ImportError("ttsmon watch does not use TensorFlow")
        return None


def _watch(args: argparse.Namespace, command: list[str] | None) -> int:
    import psutil

    from tb_plugin_ttsmon.recorder.monitor import Monitor

    if args.pid is not None and command:
        raise UsageError("give either --pid or a command after --, not both")
    if args.pid is None and not command:
        raise UsageError("give a process to watch: --pid PID, or -- COMMAND ARGS...")
    if args.pid is not None and not psutil.pid_exists(args.pid):
        raise UsageError(f"no process with pid {args.pid}")

    family = None
    if args.parse is not None or args.parse_pattern:
        from tb_plugin_ttsmon.recorder import logparse

        if args.pid is not None:
            raise UsageError("--parse reads a command's output: start it after --, not --pid")
        try:
            extra = [logparse.user_pattern(p) for p in args.parse_pattern]
            family = logparse.make_family(args.parse, extra)
        except ValueError as err:
            raise UsageError(str(err)) from None

    try:
        os.makedirs(args.logdir, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create the log directory {args.logdir!r}: {err}") from None

    received: list[int] = []
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if child is not None and child.poll() is None:
            child.send_signal(signum)  # the child decides how to stop; we wait for it

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if command:
            try:
                child = _start(command, parsed=family is not None)
            except OSError as err:
                print(f"ttsmon watch: cannot start {command[0]!r}: {err}", file=sys.stderr)
                return EXIT_NOT_FOUND
            pid = child.pid
        else:
            pid = args.pid
        pumps = sink = None
        if child is not None and family is not None:
            # The output flows from the first byte: creating the Monitor takes a
            # tenth of a second, which the program's lines must not wait for.
            from tb_plugin_ttsmon.recorder.logparse import BlockParser, RequestSink
            from tb_plugin_ttsmon.recorder.passthrough import Passthrough

            sink = RequestSink()
            pumps = Passthrough(child, BlockParser(family, sink, _parse_problem))
            # The pumps wait for the GIL while other threads run Python (the
            # Monitor starting, the sampler): let them in every 1 ms, not 5.
            sys.setswitchinterval(0.001)
        try:
            monitor = Monitor(
                args.logdir,
                interval=args.interval,
                writer="event",
                pid=pid,
                gpus=not args.no_gpus,
                prometheus_port=args.prometheus_port,
                prometheus_host=args.prometheus_host,
                roll_s=args.roll_s,
                spool_mib=args.spool_mib,
            )
        except (ValueError, ImportError) as err:  # a port in use, a bad URL or setting
            if child is not None:
                child.kill()
                child.wait()
                if pumps is not None:
                    pumps.finish()
            raise UsageError(str(err)) from None
        if sink is not None:
            sink.connect(monitor.log_request)
        expected_exit = _ExpectedExit(pid)
        faults_logger = logging.getLogger("tb_plugin_ttsmon")
        faults_logger.addFilter(expected_exit)
        try:
            if child is not None:
                code = child.wait()
                if pumps is not None:
                    pumps.finish()
                return 128 - code if code < 0 else code
            return _wait_pid(pid, received)
        finally:
            monitor.close()  # flushes every sample taken
            faults_logger.removeFilter(expected_exit)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _ExpectedExit(logging.Filter):
    """Drops the sampler's "process N exited" warning for the watched process.

    `watch` ends when that process exits; a sampler tick that sees it gone
    (or a zombie) before `watch` closes the Monitor is the normal end, not a
    fault, and must not add a line to the program's passed-through stderr.
    """

    def __init__(self, pid: int) -> None:
        super().__init__()
        self._text = f"process {pid} exited;"

    def filter(self, record: logging.LogRecord) -> bool:
        return self._text not in record.getMessage()


def _start(command: list[str], parsed: bool) -> subprocess.Popen[bytes]:
    """Starts COMMAND; with `parsed`, its stdout and stderr come to us through pipes."""
    if not parsed:
        return subprocess.Popen(command)
    env = dict(os.environ)
    # A Python program writing to a pipe holds its output back in a buffer:
    # its timer lines would reach us (and the user) seconds late, and the
    # requests' times with them. Unbuffered, as on a terminal.
    env.setdefault("PYTHONUNBUFFERED", "1")
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _parse_problem(message: str) -> None:
    from tb_plugin_ttsmon.recorder.faults import logger

    logger.debug("ttsmon watch --parse: %s", message)


def _wait_pid(pid: int, received: list[int]) -> int:
    """Waits for a process that is not our child; 0 when it ends, 128+N on signal N."""
    import psutil

    try:
        proc = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0
    while not received:
        try:
            # A zombie has ended; its parent just has not reaped it yet.
            if proc.status() == psutil.STATUS_ZOMBIE:
                return 0
            proc.wait(timeout=PID_POLL_S)
            return 0
        except psutil.TimeoutExpired:
            continue
        except psutil.NoSuchProcess:
            return 0
    return 128 + received[0]


# -- export and report ----------------------------------------------------------------------------


def _write_output(text: str, path: str | None) -> None:
    data = text.encode("utf-8")
    if path is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    with open(path, "wb") as f:
        f.write(data)


def _open(logdir: str) -> Any:
    from tb_plugin_ttsmon import report, stores

    if stores.is_remote(logdir):
        try:
            return report.LogdirData(logdir)
        except (ValueError, ImportError, OSError) as err:
            raise UsageError(
                f"cannot read {stores.redact_url(logdir)!r}: {type(err).__name__}: {err}"
            ) from err
    if not os.path.isdir(logdir):
        raise UsageError(f"{logdir!r} is not a directory")
    return report.LogdirData(logdir)


def _export(args: argparse.Namespace) -> int:
    from tb_plugin_ttsmon import report

    data = _open(args.logdir)
    runs = _runs(data, args.run)
    progress = report.Progress(len(runs), "export", enabled=sys.stderr.isatty())
    text = report.export(data, runs, args.format, single=args.run is not None, progress=progress)
    _write_output(text, args.output)
    return 0


def _report(args: argparse.Namespace) -> int:
    from tb_plugin_ttsmon import report

    data = _open(args.logdir)
    runs = _runs(data, None)
    progress = report.Progress(len(runs), "report", enabled=sys.stderr.isatty())
    html_text = report.render_html(data, runs, progress=progress)
    _write_output(html_text, args.output)
    print(f"ttsmon report: wrote {args.output} ({len(runs)} runs)", file=sys.stderr)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from tb_plugin_ttsmon import compare_text

    data = _open(args.logdir)
    for run in (args.run_a, args.run_b):
        _runs(data, run)
    answer = data.reader.compare(args.run_a, args.run_b)
    if args.format == "json":
        from tb_plugin_ttsmon.query import encode

        text = encode.dumps(answer) + "\n"
    else:
        text = compare_text.render(answer)
    _write_output(text, args.output)
    return 0


def _runs(data: Any, run: str | None) -> list[str]:
    names: list[str] = data.run_names()
    if not names:
        raise UsageError(f"{data.logdir!r} holds no ttsmon data")
    if run is None:
        return names
    if run not in names:
        raise UsageError(f"no run {run!r} with ttsmon data; runs: {', '.join(names)}")
    return [run]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ttsmon` console script; returns the exit code."""
    if argv is None and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _NoTensorFlow())  # only as the console script
    args_list = list(sys.argv[1:] if argv is None else argv)
    args_list, command = _split_command(args_list)
    parser = build_parser()
    args = parser.parse_args(args_list)
    prog = f"ttsmon {args.subcommand}"
    try:
        if args.subcommand == "watch":
            return _watch(args, command)
        if args.subcommand == "export":
            return _export(args)
        if args.subcommand == "compare":
            return _compare(args)
        return _report(args)
    except UsageError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `ttsmon export ... | head`: the reader left; not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
