"""`Monitor`: the recorder's public face.

A `Monitor` owns one event writer (one new event file in the run directory)
and one sampler thread. Training code calls its `log_*` methods; the sampler
thread records the machine. Arguments are checked on the caller's thread and
raise there; everything that can go wrong later (a full disk, NVML, a
vanished process) is logged once and never reaches the training loop.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tb_plugin_ttsmon import metadata, stores
from tb_plugin_ttsmon.recorder import distributed, objectstore, writers
from tb_plugin_ttsmon.recorder import facts as facts_lib
from tb_plugin_ttsmon.recorder import gradients as gradients_lib
from tb_plugin_ttsmon.recorder import inference as inference_lib
from tb_plugin_ttsmon.recorder import models as models_lib
from tb_plugin_ttsmon.recorder.alerts import DEFAULT_ALERTS, Alert, AlertEngine, AlertEvent
from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.inference import InferenceRequest, InferenceSource, InferenceWindow
from tb_plugin_ttsmon.recorder.node import NodeGated, NodeRole
from tb_plugin_ttsmon.recorder.profiler import Profiler

if TYPE_CHECKING:
    from tb_plugin_ttsmon.recorder.prometheus import PrometheusExporter
from tb_plugin_ttsmon.recorder.sampler import Sampler, check_interval
from tb_plugin_ttsmon.recorder.sources import Source
from tb_plugin_ttsmon.recorder.values import to_float, to_step

# Seconds between attempts at a new event file after writing failed; read
# when a Monitor is created (see `writers.ManagedWriter`).
WRITE_RETRY_S = writers.WRITE_RETRY_S
DEFAULT_LOG_DIR = "logs/ttsmon"
DEFAULT_ROLL_S = objectstore.DEFAULT_ROLL_S
DEFAULT_SPOOL_MIB = objectstore.DEFAULT_SPOOL_BYTES / 2**20

__all__ = ["DEFAULT_LOG_DIR", "WRITE_RETRY_S", "InferenceRequest", "Monitor"]


class _StepClock:
    """Strictly increasing integer steps from wall time (see `metadata.sample_step`)."""

    def __init__(self) -> None:
        self._last = -1
        self._lock = threading.Lock()

    def next(self, wall_s: float) -> int:
        with self._lock:
            self._last = max(metadata.sample_step(wall_s), self._last + 1)
            return self._last


class _TrainingStepSource:
    """Puts the latest logged training step into each sample."""

    name = "training_step"

    def __init__(self, monitor: Monitor) -> None:
        self._monitor = monitor

    def sample(self, now_s: float, out: dict[str, float]) -> None:
        step = self._monitor._last_training_step
        if step is not None:
            out["sampler/training_step"] = float(step)

    def facts(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


def _register_before_executor_shutdown(hook: Callable[[], None]) -> bool:
    """Runs `hook` at interpreter exit before thread pools stop taking work; True if it will.

    An object store's last upload at exit goes through asyncio (s3fs,
    aiohttp), which resolves hosts in a thread pool; by the time `atexit`
    hooks run, `concurrent.futures` has refused new work ("cannot schedule
    new futures after interpreter shutdown"). Hooks registered here run
    first, latest first, when the main thread ends. CPython's private API
    (3.9+): where it is missing, `atexit` is used and what is left waits in
    the spool for the next writer.
    """
    register = getattr(threading, "_register_atexit", None)
    if register is None:
        return False
    try:
        register(hook)
    except RuntimeError:  # the interpreter is shutting down already
        return False
    return True


def _close_at_exit(ref: weakref.ref[Monitor]) -> None:
    monitor = ref()
    if monitor is not None:
        monitor.close()


class Monitor:
    """Records a job's machine, training and inference into a TensorBoard run.

    Example::

        import tb_plugin_ttsmon as ttsmon

        with ttsmon.Monitor("logs/run1", interval=1.0) as mon:
            for step, batch in enumerate(data):
                loss = train_step(batch)
                mon.log_training(step, loss=loss, learning_rate=lr)

    Args:
      log_dir: The run directory. It is created if needed; a restarted job
        appends a new event file to it. Give each process its own run
        directory (TensorBoard merges the files of a directory into one run).
        In a distributed job (torchrun, TF_CONFIG, Open MPI, SLURM; see
        `recorder.distributed`) it is the job's directory, and rank k writes
        to ``<log_dir>/<host>-rank<k>`` (see `rank_dir`); `log_dir` then
        holds that path.
      interval: Seconds between system samples (at least 0.1), or `None` for
        no sampler thread (training and inference logging only).
      writer: ``"auto"`` (tf.summary when TensorFlow imports, else the TF-free
        writer), ``"tf"`` or ``"event"``.
      flush_s: Longest time logged data waits before it reaches the file (and
        so a running TensorBoard).
      pid: The process whose tree is measured (default: this process).
      gpus: Whether to sample GPUs through NVML.
      gpu_indices: NVML indices of the GPUs to sample (default: those in
        ``CUDA_VISIBLE_DEVICES``, else all).
      per_core_cpu: Whether to record every core's utilization too.
      inference_window_s: Length of the trailing window for latency
        percentiles and throughput.
      alerts: Alert rules (`ttsmon.Alert`) on top of the default ones.
      default_alerts: Whether the default rules are on (`alerts.DEFAULT_ALERTS`:
        NaN/Inf loss or gradient norm, GPU memory > 95 % for 30 s, GPU at
        85 °C or more, a GPU throttled while busy, host memory > 95 %, RSS
        rising steadily over 10 minutes, log disk > 95 % full).
      on_alert: Called with each `AlertEvent` (firing or resolved), on a
        thread of its own, e.g. to post to a chat webhook.
      profile_on_alert: Names of alert rules whose firing starts a short
        profiler capture (e.g. ``("gpu_utilization_low",)``), of
        `profile_on_alert_steps` steps from the next `step()`.
      profile_on_alert_steps: Length of such a capture, in training steps.
      start: Whether to start sampling now (else call `start()`).
      job: The job id recorded in the run facts, in place of the one the
        launcher's environment gives (every rank of a job must pass the same).
      rank_dir: Whether a rank of a distributed job writes to its own
        ``<host>-rank<k>`` subdirectory of `log_dir`. None (default): yes,
        unless `log_dir` already names the rank (``.../rank3``) or the
        environment says otherwise (``TTSMON_RANK_DIR=0`` or ``1``); an
        explicit True or False wins over both.
      host_sampling: Who samples the host (``system/``, ``container/``) and
        every GPU's device metrics. ``"auto"``: in a distributed job one rank
        per node (local rank 0, elected without races through a lock file in
        the temporary directory; another rank takes over when it exits),
        written to that rank's run; every rank still samples its own process
        tree and its GPU memory. Outside a job, this Monitor. ``"always"``:
        this Monitor, in a job too. ``"never"``: no host or device series.
        ``TTSMON_HOST_SAMPLING`` sets it for a whole job.
      prometheus_port: Serve ``/metrics`` for Prometheus on this port
        (`recorder.prometheus`): request latency, time to first audio,
        per-stage latency and RTF histograms, request and audio counters,
        and the latest system and GPU samples. 0 picks a free port
        (`prometheus_url` says which). None: no endpoint.
      prometheus_host: The address it binds: 127.0.0.1 unless told otherwise
        (``"0.0.0.0"`` for a scraper on another machine).
      roll_s: For a `log_dir` in an object store (``s3://``, ``gs://``,
        ``az://``: `recorder.objectstore`), seconds between the event-file
        objects the run is written as (a store cannot append). Data reaches
        the store, and so TensorBoard, at each roll and at close; a
        ``kill -9`` loses at most this much.
      spool_mib: For a `log_dir` in an object store, the most MiB of objects
        that wait on the local disk while the store is unreachable; only what
        overflows it is dropped (counted and reported).

    Raises:
      TypeError, ValueError: an argument is of the wrong type or out of range.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] = DEFAULT_LOG_DIR,
        interval: float | None = 1.0,
        *,
        writer: str = "auto",
        flush_s: float = writers.DEFAULT_FLUSH_S,
        pid: int | None = None,
        gpus: bool = True,
        gpu_indices: Sequence[int] | None = None,
        per_core_cpu: bool = True,
        inference_window_s: float = 10.0,
        alerts: Sequence[Alert] = (),
        default_alerts: bool = True,
        on_alert: Callable[[AlertEvent], Any] | None = None,
        profile_on_alert: Sequence[str] = (),
        profile_on_alert_steps: int = 5,
        start: bool = True,
        job: str | None = None,
        rank_dir: bool | None = None,
        host_sampling: str = "auto",
        prometheus_port: int | None = None,
        prometheus_host: str = "127.0.0.1",
        roll_s: float = DEFAULT_ROLL_S,
        spool_mib: float = DEFAULT_SPOOL_MIB,
    ) -> None:
        if not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a path, not {type(log_dir).__name__}")
        self.log_dir = os.fspath(log_dir)
        if not self.log_dir:
            raise ValueError("log_dir must not be empty")
        self._rank = distributed.resolve(job)
        self._job_log_dir = self.log_dir
        self._rank_dir = distributed.use_rank_dir(rank_dir, self._rank, self.log_dir)
        if self._rank_dir:
            assert self._rank is not None
            self.log_dir = distributed.join(self.log_dir, distributed.rank_dir_name(self._rank))
        self._remote = stores.is_remote(self.log_dir)
        if self._remote:
            stores.check_url(self.log_dir)
        self._roll_s = _checked_number("roll_s", roll_s, 0.1, 3600.0)
        self._spool_mib = _checked_number("spool_mib", spool_mib, 2.0**-10, 2.0**20)
        self._host_sampling = distributed.host_sampling_setting(host_sampling)
        self.interval = None if interval is None else check_interval(interval)
        self._writer_name = writers.resolve_writer_name(writer)
        if isinstance(flush_s, bool) or not isinstance(flush_s, (int, float)):
            raise TypeError(f"flush_s must be a number, not {type(flush_s).__name__}")
        if not 0 < flush_s <= 60:
            raise ValueError(f"flush_s must be in (0, 60] seconds, got {flush_s!r}")
        self.flush_s = float(flush_s)
        if pid is not None:
            pid = to_step(pid, "pid")
        self._pid = pid
        self._gpus = bool(gpus)
        self._gpu_indices = (
            None if gpu_indices is None else [to_step(i, "gpu index") for i in gpu_indices]
        )
        self._per_core_cpu = bool(per_core_cpu)
        self._window = InferenceWindow(inference_window_s)

        self._faults = FaultLog()
        if isinstance(alerts, Alert) or not all(isinstance(a, Alert) for a in alerts):
            raise TypeError("alerts must be a sequence of ttsmon.Alert rules")
        if on_alert is not None and not callable(on_alert):
            raise TypeError(f"on_alert must be callable, not {type(on_alert).__name__}")
        self._alert_clock = _StepClock()
        self._profile_clock = _StepClock()
        self._profiler = Profiler(self.log_dir, self._write_profile, self._faults)
        if isinstance(profile_on_alert, str):
            raise TypeError("profile_on_alert must be a sequence of rule names, not a string")
        self._profile_rules = frozenset(profile_on_alert)
        self._profile_on_alert_steps = to_step(profile_on_alert_steps, "profile_on_alert_steps")
        self._alerts = AlertEngine(
            [*(DEFAULT_ALERTS if default_alerts else ()), *alerts],
            self._write_alert,
            on_alert,
            self._faults,
            react=self._profile_on_alert if self._profile_rules else None,
        )
        self._closed = False
        self._node_role: NodeRole | None = None
        self._sources: list[Source] = []
        # Step phases (`step()`): the end of the previous step, and the
        # timings of the latest step until they are written (with the
        # step's `log_training` when it comes, else alone).
        self._last_step_end_s: float | None = None
        self._pending_phase: tuple[int, dict[str, float]] | None = None
        self._phase_lock = threading.Lock()
        self._sampler: Sampler | None = None
        self._sample_clock = _StepClock()
        self._inference_clock = _StepClock()
        self._model_clock = _StepClock()
        self._inference_steps = 0
        self._last_sample: dict[str, float] = {}
        self._last_sample_wall_s: float | None = None
        self._last_training_step: int | None = None
        self._last_steps_per_s_mark: tuple[int, float] | None = None
        self._last_flush_s = time.monotonic()
        self._flush_stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        if not (self._remote and _register_before_executor_shutdown(self._atexit)):
            atexit.register(self._atexit)
        self._prometheus: PrometheusExporter | None = None
        if prometheus_port is not None:
            port = to_step(prometheus_port, "prometheus_port")
            if port > 65535:
                raise ValueError(f"prometheus_port must be 0..65535, got {port}")
            from tb_plugin_ttsmon.recorder.prometheus import PrometheusExporter

            try:
                self._prometheus = PrometheusExporter(port, prometheus_host, self._faults)
            except OSError as err:
                raise ValueError(
                    f"cannot serve Prometheus metrics on {prometheus_host}:{port}: {err}"
                ) from err
        self._output = writers.ManagedWriter(
            self.log_dir,
            self._writer_name,
            self.flush_s,
            self._faults,
            retry_s=WRITE_RETRY_S,
            roll_s=self._roll_s,
            spool_bytes=int(self._spool_mib * 2**20),
        )
        if start:
            self.start()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> Monitor:
        """Starts the sampler thread (the first sample is taken at once)."""
        if self._closed:
            raise ValueError("this Monitor is closed; create a new one")
        if self.interval is None:
            if self._flusher is None:
                self._write_facts([])
                self._flusher = threading.Thread(
                    target=self._flush_loop,
                    args=(self._flush_stop,),
                    name="ttsmon-flusher",
                    daemon=True,
                )
                self._flusher.start()
            return self
        if self._sampler is not None and self._sampler.running:
            return self
        self._sources = self._build_sources()
        if self._node_role is not None:
            self._node_role.try_acquire()  # local rank 0 knows its role before the facts
        self._sampler = Sampler(
            self._sources,
            self._emit_sample,
            self.interval,
            self._faults,
            on_start=self._write_facts,
        )
        self._sampler.start()
        return self

    def stop(self) -> None:
        """Stops the sampler thread; logging calls keep working."""
        self._flush_stop.set()
        flusher, self._flusher = self._flusher, None
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(5.0)
        self._flush_stop = threading.Event()
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop()
            sampler.close_sources()

    def close(self) -> None:
        """Stops sampling, flushes and closes the event file. Idempotent."""
        if self._closed:
            return
        self.stop()
        if self._profiler.active:
            self._profiler.stop()
        self._write_pending_phase()
        self._alerts.close()
        if self._prometheus is not None:
            self._prometheus.close()
        self._closed = True
        atexit.unregister(self._atexit)
        self._output.close()

    def flush(self) -> None:
        """Writes everything logged so far to the event file now."""
        self._write_pending_phase()
        self._output.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether `close()` was called."""
        return self._closed

    @property
    def object_store_stats(self) -> dict[str, Any] | None:
        """For a `log_dir` in an object store, what its writer did so far, else None.

        Objects and bytes uploaded, PUT requests and failures, what waits in
        the spool, what was dropped, and whether the store is failing now.
        """
        writer = self._output.current
        stats = getattr(writer, "stats", None)
        return stats() if callable(stats) else None

    @property
    def _writer(self) -> writers.SummaryWriter | None:
        """The event writer in use (`None` while writing fails); for tests."""
        return self._output.current

    @property
    def writer_name(self) -> str:
        """``"tf"``, ``"event"`` or ``"object"`` (a `log_dir` in an object store)."""
        return self._output.kind

    @property
    def prometheus_url(self) -> str | None:
        """The ``/metrics`` URL this Monitor serves, or None (no `prometheus_port`)."""
        return None if self._prometheus is None else self._prometheus.url

    @property
    def rank(self) -> distributed.RankInfo | None:
        """This process's place in its distributed job, or None outside one."""
        return self._rank

    @property
    def samples_node(self) -> bool:
        """Whether this Monitor samples the host and its GPUs now (see `host_sampling`)."""
        if self._host_sampling == "never":
            return False
        return self._node_role is None or self._node_role.holder

    # -- training ---------------------------------------------------------

    def log_training(
        self,
        step: int,
        loss: Any = None,
        accuracy: Any = None,
        learning_rate: Any = None,
        gradient_norm: Any = None,
        **more_scalars: Any,
    ) -> None:
        """Logs training metrics at `step`; `None` values are left out.

        Keyword arguments beyond the four named ones are logged as
        ``train/<name>``; names starting with ``val_`` go to ``val/<rest>``
        (``val_loss`` -> ``val/loss``). The unit follows the name's suffix
        (``tokens_per_s`` -> 1/s). Steps per second are derived from
        successive calls.

        Raises:
          TypeError: a value is not a number, or `step` is not an int.
          ValueError: a tensor value has more than one element, a step is
            negative, or a name is not a valid tag component.
        """
        step = to_step(step)
        named = {
            "loss": loss,
            "accuracy": accuracy,
            "learning_rate": learning_rate,
            "gradient_norm": gradient_norm,
        }
        scalars: dict[str, float] = {}
        for name, value in list(named.items()) + list(more_scalars.items()):
            if value is None:
                continue
            if name.startswith("val_") and len(name) > 4:
                tag = "val/" + metadata.check_name(name[4:])
            else:
                tag = "train/" + metadata.check_name(name)
            scalars[tag] = to_float(name, value)
        self._log_training_step(step, scalars)

    def log_training_step(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Logs one training step's scalars under full tags, as one event.

        Unlike `log_scalars`, this is a training step: it derives
        ``train/steps_per_s`` from the previous call and makes `step` the
        latest training step the sampler records. Integrations (the Keras
        callback) use it to write a step's metrics and per-layer gradient
        norms (``train/loss``, ``gradients/<layer>/norm``) together.

        Raises:
          TypeError, ValueError: `step`, a tag or a value is invalid.
        """
        self._log_training_step(to_step(step), _checked_scalars(scalars))

    def _log_training_step(self, step: int, scalars: dict[str, float]) -> None:
        """Writes one training step's values (full, checked tags) as one event.

        Adds ``train/steps_per_s`` since the previous step logged here and
        makes `step` the sampler's latest training step.
        """
        if self._pending_phase is not None:
            phase = self._take_phase(step)
            if phase is not None:
                for tag, value in phase.items():
                    scalars.setdefault(tag, value)
        now = time.monotonic()
        mark = self._last_steps_per_s_mark
        if mark is not None and step > mark[0] and now > mark[1]:
            scalars["train/steps_per_s"] = (step - mark[0]) / (now - mark[1])
        if mark is None or step != mark[0]:
            self._last_steps_per_s_mark = (step, now)
        if self._last_training_step is None or step > self._last_training_step:
            self._last_training_step = step
        self._emit(step, scalars)

    def log_validation(self, step: int, **metrics: Any) -> None:
        """Logs validation metrics as ``val/<name>`` at training step `step`.

        Raises:
          TypeError, ValueError: as `log_training`.
        """
        step = to_step(step)
        scalars = {
            "val/" + metadata.check_name(k): to_float(k, v)
            for k, v in metrics.items()
            if v is not None
        }
        self._emit(step, scalars)

    def log_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Logs arbitrary scalars under full tags (``train/tokens_per_s``, ...).

        Raises:
          TypeError, ValueError: a tag or value is invalid.
        """
        self._emit(to_step(step), _checked_scalars(scalars))

    def log_gradients(self, step: int, grads: Any, variables: Any = None) -> float:
        """Logs the global gradient norm and the norm of each layer at `step`.

        Args:
          step: The training step.
          grads: Gradients (TensorFlow or PyTorch tensors, numpy arrays)
            aligned with `variables`, or a mapping ``{name: gradient}``.
          variables: The variables (or their names) of `grads`.

        Returns:
          The global norm (NaN or Inf when a gradient holds them).

        Raises:
          TypeError, ValueError: as `gradients.norms`.
        """
        step = to_step(step)
        total, per_layer = gradients_lib.norms(grads, variables)
        scalars = {"train/gradient_norm": total}
        for layer, norm in per_layer.items():
            scalars[f"gradients/{layer}/norm"] = norm
        if self._last_training_step is None or step > self._last_training_step:
            self._last_training_step = step
        self._emit(step, scalars)
        return total

    def log_model(self, model: Any, name: str | None = None) -> dict[str, Any]:
        """Logs a model's facts: parameter counts, size, dtype policy.

        Args:
          model: A Keras model or a PyTorch module.
          name: A name for it (default: the model's own name or class).

        Returns:
          The facts written (``parameter_count``, ``size_bytes``, ...).

        Raises:
          TypeError: `model` is neither a Keras model nor a PyTorch module.
        """
        doc = models_lib.model_facts(model, name)
        self._emit(self._model_clock.next(time.time()), {}, {metadata.MODEL_FACTS_TAG: doc})
        return doc

    # -- profiling ----------------------------------------------------------

    def profile(self, start_step: int, num_steps: int) -> bool:
        """Captures a profile of steps ``start_step .. start_step + num_steps - 1``.

        The capture starts and stops inside `step()`, which the training loop
        calls around each step. Needs TensorFlow; without it this logs one
        WARNING and returns False.

        Raises:
          TypeError, ValueError: the steps are not non-negative ints, or `num_steps` is 0.
        """
        start_step = to_step(start_step, "start_step")
        num_steps = to_step(num_steps, "num_steps")
        if num_steps < 1:
            raise ValueError("num_steps must be at least 1")
        return self._profiler.arm(start_step, num_steps)

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Marks one training step (``with mon.step(step): train_step()``).

        Starts and stops armed profile captures, names the step in the trace
        (``tf.profiler.experimental.Trace``) while one runs, and makes `step`
        the latest training step for the system samples.

        Times the step's two phases: ``train/step_time_ms``, the time inside
        the block, and ``train/data_time_ms``, the time from the end of the
        previous `step()` block to the start of this one (the input pipeline,
        usually). They are written with the step's `log_training` when it
        follows the block, else on their own. In data-parallel training a
        fast rank waits inside its step for the slowest, so the straggler is
        the rank whose time *between* steps is longer. A block that raises
        records no timing.
        """
        step = to_step(step)
        start_s = time.perf_counter()
        if self._pending_phase is not None:
            self._write_pending_phase()
        if self._last_training_step is None or step > self._last_training_step:
            self._last_training_step = step
        try:
            with self._profiler.step(step):
                yield
        except BaseException:
            self._last_step_end_s = None
            raise
        end_s = time.perf_counter()
        phase = {"train/step_time_ms": (end_s - start_s) * 1000.0}
        if self._last_step_end_s is not None:
            phase["train/data_time_ms"] = (start_s - self._last_step_end_s) * 1000.0
        self._last_step_end_s = end_s
        with self._phase_lock:
            self._pending_phase = (step, phase)

    def _take_phase(self, step: int | None = None) -> dict[str, float] | None:
        """The pending step timings (of `step`, if given), now no longer pending."""
        with self._phase_lock:
            pending = self._pending_phase
            if pending is None or (step is not None and pending[0] != step):
                return None
            self._pending_phase = None
        return pending[1]

    def _write_pending_phase(self) -> None:
        """Writes the latest step's timings alone (no `log_training` took them)."""
        with self._phase_lock:
            pending, self._pending_phase = self._pending_phase, None
        if pending is not None:
            self._emit(pending[0], pending[1])

    def start_profiler(self) -> bool:
        """Starts a profile capture now (the seed's Start Profiler); False if it cannot."""
        return self._profiler.start(trigger="manual", _step=self._last_training_step)

    def stop_profiler(self) -> dict[str, Any] | None:
        """Stops the capture in flight and records it; returns its `profile/sessions` document."""
        return self._profiler.stop(_step=self._last_training_step)

    @property
    def profile_sessions(self) -> list[dict[str, Any]]:
        """The captures recorded by this monitor, oldest first."""
        return list(self._profiler.sessions)

    def _profile_on_alert(self, event: AlertEvent) -> None:
        """Arms a short capture when a chosen rule fires (it starts at the next `step()`)."""
        if (
            event.state == "firing"
            and event.rule in self._profile_rules
            and not self._profiler.active
        ):
            first = (self._last_training_step or 0) + 1
            self._profiler.arm(first, self._profile_on_alert_steps, trigger="alert")

    def _write_profile(self, wall_s: float, doc: dict[str, Any]) -> None:
        step = self._profile_clock.next(wall_s)
        self._emit(step, {}, {metadata.PROFILE_TAG: doc}, wall_time_s=wall_s)

    # -- inference --------------------------------------------------------

    def log_inference(
        self,
        step: int | None = None,
        latency_ms: Any = None,
        audio_seconds: Any = None,
        batch_size: Any = None,
        stages: Mapping[str, Any] | None = None,
        *,
        ttfa_ms: Any = None,
        cache_hit: bool | None = None,
        rtf: Any = None,
        tokens: Any = None,
        token_stage: str | None = None,
    ) -> None:
        """Logs one inference request.

        Args:
          step: The request's sequence number. Default: a strictly
            increasing clock (milliseconds since the epoch), safe across
            restarts of a server.
          latency_ms: Wall time of the whole request.
          audio_seconds: Length of the audio produced; gives the real-time
            factor ``rtf = latency_s / audio_seconds`` (< 1 is faster than
            real time). With 0 (no audio) the request has no RTF.
          batch_size: Items in the request.
          stages: Stage name -> latency in ms (``{"gpt_gen": 6830.0, ...}``).
            The latency no stage accounts for is logged as the stage
            ``unattributed``, unless `stages` names it.
          ttfa_ms: Time to first audio (``inference/ttfa_ms``).
          cache_hit: Whether the speaker prompt was cached (warm) or not
            (cold); the latency and TTFA are also logged under
            ``inference/warm/`` or ``inference/cold/``.
          rtf: A real-time factor measured by the model itself (IndexTTS2
            prints one), logged as it is in place of the computed one.
          tokens: Output tokens of the request; with a token stage, gives its
            tokens per second and time per output token.
          token_stage: The stage that generates the tokens (default: the
            first stage named ``gpt*``).

        Raises:
          TypeError: a value is not a number, or `latency_ms` is missing.
          ValueError: a negative latency, audio length or batch size, or a bad stage name.
        """
        if latency_ms is None:
            raise TypeError("log_inference needs latency_ms")
        latency = to_float("latency_ms", latency_ms)
        if latency < 0:
            raise ValueError(f"latency_ms must be >= 0, got {latency}")
        record = inference_lib.RequestRecord(
            latency_ms=latency,
            audio_s=inference_lib.non_negative("audio_seconds", audio_seconds),
            batch_size=None if batch_size is None else to_step(batch_size, "batch_size"),
            stages=inference_lib.checked_stages(stages),
            ttfa_ms=inference_lib.non_negative("ttfa_ms", ttfa_ms),
            cache_hit=None if cache_hit is None else bool(cache_hit),
            rtf=inference_lib.non_negative("rtf", rtf),
            tokens=None if tokens is None else to_step(tokens, "tokens"),
            token_stage=None if token_stage is None else metadata.check_name(token_stage),
        )
        self.log_request(record, step)

    def log_request(self, record: inference_lib.RequestRecord, step: int | None = None) -> None:
        """Logs one request given as a `RequestRecord` (integrations: the log parser).

        Writes its segments first, then the request; feeds the window
        statistics and the Prometheus endpoint.
        """
        now = time.time()
        for segment in record.segments:
            wall = segment.wall_time_s
            self._emit(
                self._inference_clock.next(wall),
                inference_lib.segment_scalars(segment),
                wall_time_s=wall,
            )
        stages = record.all_stages
        scalars = record.scalars(stages)
        step = self._inference_clock.next(now) if step is None else to_step(step)
        rtf = scalars.get("inference/rtf", math.nan)
        ttfa = math.nan if record.ttfa_ms is None else record.ttfa_ms
        audio = math.nan if record.audio_s is None else record.audio_s
        self._window.add(time.monotonic(), record.latency_ms, audio, rtf, ttfa, stages)
        if self._prometheus is not None:
            self._prometheus.request(record.latency_ms, ttfa, rtf, audio, stages, record.cache_hit)
        self._emit(step, scalars, wall_time_s=now)

    @contextlib.contextmanager
    def time_inference(
        self,
        step: int | None = None,
        audio_seconds: float | None = None,
        batch_size: int | None = None,
        *,
        sync: str | Callable[[], None] | None = None,
        token_stage: str | None = None,
    ) -> Iterator[InferenceRequest]:
        """Times the block as one inference request and logs it on exit.

        Example::

            with mon.time_inference(batch_size=1, sync="cuda") as req:
                req.cache_hit = speaker in prompt_cache
                with req.stage("gpt_gen"):
                    codes = gpt(text)
                for chunk in vocoder.stream(codes):
                    req.segment(audio_seconds=len(chunk) / sample_rate, tokens=chunk.tokens)
                    yield chunk  # the first segment marks the time to first audio

        Args:
          sync: ``"cuda"``: each stage boundary (and the request's start,
            first audio and end) waits for the GPU with
            `torch.cuda.synchronize` where the job uses CUDA through PyTorch,
            so GPU work lands in the stage that queued it; a no-op elsewhere.
            A callable is called instead. None: no waiting.
          token_stage: The stage that generates the segments' tokens
            (default: the first stage named ``gpt*``).

        A block that raises is not logged (a failed request has no RTF).

        Raises:
          ValueError, TypeError: a bad `sync` or `token_stage`.
        """
        sync_fn = inference_lib.resolve_sync(sync)
        if token_stage is not None:
            metadata.check_name(token_stage, "stage name")
        sync_fn()
        request = InferenceRequest(audio_seconds, batch_size, sync=sync_fn)
        yield request
        latency_ms = request.finish()
        self.log_request(inference_lib.RequestRecord.of(request, latency_ms, token_stage), step)

    # -- system -----------------------------------------------------------

    def current(self) -> dict[str, float]:
        """The latest system sample, tag -> value (empty before the first)."""
        return dict(self._last_sample)

    @property
    def alert_events(self) -> list[AlertEvent]:
        """Every alert event of this monitor so far (firing and resolved), oldest first."""
        return list(self._alerts.events)

    @property
    def samples_taken(self) -> int:
        """System samples taken since the sampler last started."""
        sampler = self._sampler
        return sampler.samples_taken if sampler is not None else 0

    @property
    def last_sample_time_s(self) -> float | None:
        """Wall time of the latest sample."""
        return self._last_sample_wall_s

    def sample_now(self) -> dict[str, float]:
        """Takes one sample on the calling thread (sampling must be on).

        For scripts and tests; training code never needs it.
        """
        if self._sampler is None:
            raise ValueError("sampling is not running; call start() first")
        return self._sampler.sample_once()

    # -- internals ----------------------------------------------------------

    def _build_sources(self) -> list[Source]:
        from tb_plugin_ttsmon.recorder.cgroup import CgroupSource
        from tb_plugin_ttsmon.recorder.host import HostSource, ProcessTreeSource
        from tb_plugin_ttsmon.recorder.nvml import NvmlSource
        from tb_plugin_ttsmon.recorder.tfmem import TFMemorySource

        process = ProcessTreeSource(self._faults, self._pid)
        host: list[Source] = [
            HostSource(self._faults, self.log_dir, per_core=self._per_core_cpu),
            CgroupSource(self._faults),
        ]
        device_wide: Callable[[], bool] | None = None
        sources: list[Source] = []
        if self._host_sampling == "never":
            host = []
            device_wide = _never
        elif self._host_sampling == "auto" and self._rank is not None and self._rank.distributed:
            # One rank per node samples the host and the GPUs (recorder/node.py).
            self._node_role = role = NodeRole(
                self._rank.job,
                self._rank.first_on_node,
                self._faults,
                who=self.log_dir,
                on_takeover=self._on_node_takeover,
            )
            sources.append(role)
            host = [NodeGated(source, role) for source in host]
            device_wide = role.is_holder
        sources += [_TrainingStepSource(self), *host, process]
        if self._gpus:
            sources.append(
                NvmlSource(
                    self._faults,
                    process.tree_pids,
                    gpu_indices=self._gpu_indices,
                    device_wide=device_wide,
                )
            )
        sources.append(TFMemorySource(self._faults))
        sources.append(InferenceSource(self._window))
        return sources

    def _settings(self) -> dict[str, Any]:
        return {
            "writer": self._output.kind,
            "interval_s": self.interval,
            "flush_s": self.flush_s,
            "per_core_cpu": self._per_core_cpu,
            "gpus": self._gpus,
            "inference_window_s": self._window.window_s,
            "monitored_pid": self._pid if self._pid is not None else os.getpid(),
        }

    def _on_node_takeover(self) -> None:
        """This rank became its node's sampler mid-run: new facts say so, with the host's."""
        self._write_facts(self._sources)

    def _write_facts(self, sources: Sequence[Source]) -> None:
        doc = facts_lib.run_facts(self._settings())
        doc["log_dir"] = _shown_dir(self.log_dir)
        if self._output.kind == "object":
            doc["object_store"] = {"roll_s": self._roll_s, "spool_mib": self._spool_mib}
        if self._rank is not None:
            doc.update(self._rank.facts())
            doc["distributed"] = {
                **self._rank.launcher_facts(),
                "samples_node": self.samples_node,
                "rank_dir": self._rank_dir,
                "job_log_dir": _shown_dir(self._job_log_dir),
            }
        for source in sources:
            try:
                doc.update(source.facts())
            except Exception as err:
                self._faults.warn_once(
                    f"facts:{source.name}", "%s facts failed (%s)", source.name, err
                )
        now = time.time()
        self._emit(self._sample_clock.next(now), {}, {metadata.RUN_FACTS_TAG: doc}, wall_time_s=now)

    def _write_alert(self, wall_s: float, doc: dict[str, Any]) -> None:
        step = self._alert_clock.next(wall_s)
        self._emit(step, {}, {metadata.ALERTS_TAG: doc}, wall_time_s=wall_s)

    def _emit_sample(self, wall_s: float, values: dict[str, float]) -> None:
        self._last_sample = values
        self._last_sample_wall_s = wall_s
        self._emit(self._sample_clock.next(wall_s), values, wall_time_s=wall_s, sampled=True)
        if self._prometheus is not None:
            try:
                self._prometheus.sample(values)
            except Exception as err:  # the endpoint is a view; the run goes on without it
                self._faults.warn_once("prometheus:sample", "prometheus: update failed (%s)", err)
        # TensorFlow's writer flushes only when it is written to, so the
        # sampler also flushes on time: logged data then reaches TensorBoard
        # within flush_s + interval even while training code logs nothing.
        # The event writer's own thread flushes on that timer already; a
        # flush asked from here would only wake it once more and wait for it.
        now = time.monotonic()
        if now - self._last_flush_s >= self.flush_s:
            self._last_flush_s = now
            if self._output.kind == "tf":
                self.flush()
            else:
                self._write_pending_phase()

    def _flush_loop(self, stop: threading.Event) -> None:
        """Without a sampler, flushes every flush_s (TensorFlow's writer needs it)."""
        while not stop.wait(self.flush_s):
            self.flush()

    def _emit(
        self,
        step: int,
        scalars: Mapping[str, float],
        documents: Mapping[str, Any] | None = None,
        wall_time_s: float | None = None,
        sampled: bool = False,
    ) -> None:
        """Writes one event; a failure is logged once and never raised.

        `sampled`: the event is a system sample (see `AlertEngine.observe`).
        """
        if self._closed:
            self._faults.warn_once(
                "closed", "logging on a closed Monitor (%s) is ignored", self.log_dir
            )
            return
        # Alerts first: a full log disk must still raise its alert.
        if scalars:
            self._alerts.observe(
                scalars,
                time.time() if wall_time_s is None else wall_time_s,
                self._last_training_step,
                sampled,
            )
        self._output.write(step, scalars, documents, wall_time_s=wall_time_s)


def _shown_dir(path: str) -> str:
    """A run directory as run facts show it: absolute, or a URL without credentials."""
    if "://" in path:
        return stores.redact_url(path)
    return os.path.abspath(path)


def _checked_number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _never() -> bool:
    return False


def _checked_scalars(scalars: Mapping[str, Any]) -> dict[str, float]:
    """`scalars` (full tag -> number) checked on the caller's thread."""
    if not isinstance(scalars, Mapping):
        raise TypeError(f"scalars must be a mapping of tag -> value, not {type(scalars).__name__}")
    return {metadata.check_tag(tag): to_float(tag, v) for tag, v in scalars.items()}
