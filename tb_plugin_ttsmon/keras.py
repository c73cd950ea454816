"""`MonitorCallback`: the recorder inside Keras `fit`.

Logs loss and metrics, the learning rate, steps per second, validation
metrics, the model's facts, and (where the optimizers allow) the global and
per-layer gradient norms, while a `Monitor` samples the machine.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
import threading
import types
import weakref
from typing import Any

try:
    import keras
except ImportError as err:  # PyTorch-only machines: the rest of ttsmon works without it
    raise ImportError(
        "tb_plugin_ttsmon.keras needs Keras 3 (pip install tensorflow); "
        f"without it, record with ttsmon.Monitor directly ({err})"
    ) from err

from tb_plugin_ttsmon.recorder.faults import logger
from tb_plugin_ttsmon.recorder.gradients import layer_of, variable_name
from tb_plugin_ttsmon.recorder.monitor import DEFAULT_LOG_DIR, Monitor

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")

# How often a fit's watcher thread looks whether that fit is still running.
# It only matters for a fit that raised: it bounds how long its Monitor stays
# open after the exception has left `fit`.
WATCH_S = 0.5

# The apply count kept in float32 stays an exact integer below 2**24.
_COUNT_MOD = 2.0**20

_MISSING = object()


def _metric_name(key: str) -> str:
    # Keras metric names are the user's (`MeanSquaredError`, `f1 score`...):
    # make them tag components rather than fail a whole training run.
    return _UNSAFE.sub("_", key).strip("_") or "metric"


class MonitorCallback(keras.callbacks.Callback):
    """Records a Keras training run for the ttsmon TensorBoard tab.

    Example::

        model.fit(x, y, epochs=10, validation_data=(xv, yv),
                  callbacks=[ttsmon.keras.MonitorCallback("logs/run1")])

    Gradient norms come from the optimizers' ``apply``: ``model.optimizer``
    and every optimizer the model holds as an attribute (a GAN's
    ``self.g_optimizer`` and ``self.d_optimizer``). Each norm is matched to
    its layer through the variables passed to that ``apply``, so a custom
    ``train_step`` that applies some variables, in any order, or several
    optimizers each on their own variables, is logged right. A layer no
    optimizer applied since the last logged step is left out of that step;
    ``train/gradient_norm`` is the norm over every gradient applied in the
    step (both networks of a GAN). ``train/learning_rate`` is the rate of
    ``model.optimizer`` or, where that one did not apply (a GAN compiled
    with its own optimizers), of the first of the model's optimizers that did.

    A `fit` that raises (KeyboardInterrupt, out of memory, a failing
    callback) is cleaned up like one that ends: the optimizers are restored
    and the callback's own Monitor is closed, within `WATCH_S` seconds of
    the exception leaving `fit` (a watcher thread looks), and in any case
    before the same callback starts its next `fit`.

    Args:
      log_dir: The run directory (ignored when `monitor` is given).
      interval: Seconds between system samples.
      update_freq: ``"batch"`` (every batch), ``"epoch"``, or an int N
        (every N batches): how often training metrics are logged.
      gradient_norms: Whether to log the global and per-layer gradient norms.
        It wraps the optimizers' ``apply`` (inner optimizer under mixed
        precision) before the first training step is traced; each norm costs
        one extra read of the gradients on the device.
      profile_steps: ``(first, last)`` training steps (as logged: the
        optimizer's iteration count after the batch, from 1) to capture with
        TensorFlow's profiler; each step is named in the trace. Captures
        armed by the Monitor's ``profile_on_alert`` rules start at the next
        step in the same way.
      monitor: An existing `Monitor` to log into. It stays yours: the callback
        flushes it when a fit ends, normally or not, and never closes it (nor
        a profile capture still running on it). Default: the callback creates
        one Monitor (one new event file) per `fit` and closes it when that fit
        ends, also when it raises.
      **monitor_kwargs: Passed to `Monitor` (``writer``, ``flush_s``,
        ``alerts``, ``profile_on_alert``, ...).

    Raises:
      ValueError: `update_freq` is not ``"batch"``, ``"epoch"`` or a positive
        int, or `profile_steps` is not a ``(first, last)`` pair with first <= last.
    """

    def __init__(
        self,
        log_dir: str = DEFAULT_LOG_DIR,
        interval: float | None = 1.0,
        update_freq: str | int = "batch",
        gradient_norms: bool = True,
        profile_steps: tuple[int, int] | None = None,
        monitor: Monitor | None = None,
        **monitor_kwargs: Any,
    ) -> None:
        super().__init__()
        if profile_steps is not None:
            first_last = tuple(profile_steps)
            if (
                len(first_last) != 2
                or not all(isinstance(s, int) and not isinstance(s, bool) for s in first_last)
                or not 0 <= first_last[0] <= first_last[1]
            ):
                raise ValueError(
                    f"profile_steps must be (first, last) steps with 0 <= first <= last, "
                    f"got {profile_steps!r}"
                )
        self.profile_steps = profile_steps
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (
            isinstance(update_freq, bool) or not isinstance(update_freq, int) or update_freq < 1
        ):
            raise ValueError(
                f"update_freq must be 'batch', 'epoch' or an int >= 1, got {update_freq!r}"
            )
        self.log_dir = log_dir
        self.interval = interval
        self.update_freq = update_freq
        self.gradient_norms = gradient_norms
        self._given_monitor = monitor
        self._monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = monitor
        self._base_step = 0
        self._epoch_base = 0
        self._completed = 0
        self._model_logged = False
        self._traced_for: Any = None  # the train function whose tf.function was looked up
        self._traced: Any = None
        self._step_cm: Any = None
        self._hook: _GradientHook | None = None
        self._hook_seen: list[float] = []  # the hook's values at the last read
        # The fit in progress; the lock orders its end (on the training
        # thread or the watcher) before the next fit's start.
        self._fit: _Fit | None = None
        self._fit_lock = threading.Lock()

    # -- Keras hooks -------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        with self._fit_lock:
            if self._fit is not None:  # the previous fit raised; not watched, or not yet
                self._end_fit_locked(self._fit, aborted=True)
            if self._given_monitor is None:
                self.monitor = Monitor(self.log_dir, interval=self.interval, **self._monitor_kwargs)
            fit = self._fit = _Fit()
            optimizers, has_model_optimizer = _optimizers(self.model)
            self._base_step = _base_step(optimizers, has_model_optimizer)
            self._completed = 0
            self._epoch_base = 0
            if optimizers:
                self._install_hook(fit, optimizers)
            if self.profile_steps is not None and self.monitor is not None:
                first, last = self.profile_steps
                self.monitor.profile(first, last - first + 1)
            _watch(self, fit)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # The step context starts and stops profile captures (profile_steps,
        # or one a profile_on_alert rule armed) and names each step in the trace.
        if self.monitor is not None:
            step = self._base_step + self._epoch_base + int(batch) + 1
            self._step_cm = self.monitor.step(step)
            self._step_cm.__enter__()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_base = self._completed

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # `batch` is the epoch's last finished step (several per call with
        # steps_per_execution > 1).
        if self._step_cm is not None:
            step_cm, self._step_cm = self._step_cm, None
            step_cm.__exit__(None, None, None)
        self._completed = self._epoch_base + int(batch) + 1
        if not self._model_logged:
            self._log_model()
        if self.update_freq != "epoch" and self._completed % int(self.update_freq) == 0:
            self._log_train(self._base_step + self._completed, logs or {})

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        step = self._base_step + self._completed
        logs = logs or {}
        if self.update_freq == "epoch":
            self._log_train(step, {k: v for k, v in logs.items() if not k.startswith("val_")})
        val = {_metric_name(k[4:]): v for k, v in logs.items() if k.startswith("val_")}
        monitor = self.monitor
        if val and monitor is not None:
            monitor.log_validation(step, **{k: v for k, v in val.items() if _is_number(v)})

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        fit = self._fit
        if fit is not None:
            self._end_fit(fit, aborted=False)

    # -- the end of a fit --------------------------------------------------

    def _end_fit(self, fit: _Fit, aborted: bool) -> None:
        with self._fit_lock:
            self._end_fit_locked(fit, aborted)

    def _end_fit_locked(self, fit: _Fit, aborted: bool) -> None:
        """Undoes what `on_train_begin` set up, once per fit (caller holds the lock)."""
        if self._fit is not fit:
            return
        self._fit = None
        fit.done.set()
        step_cm, self._step_cm = self._step_cm, None
        if step_cm is not None:  # the fit raised inside a step
            with contextlib.suppress(Exception):
                step_cm.__exit__(None, None, None)
        _unwrap(fit)
        monitor = self.monitor
        if monitor is None:
            return
        if aborted:
            logger.info(
                "ttsmon: a fit logging to %s raised; what it logged is saved", monitor.log_dir
            )
        try:
            if self._given_monitor is None:
                monitor.close()
            else:
                monitor.flush()
        except Exception as err:  # never worse than the fit's own outcome
            logger.warning("ttsmon: closing the monitor of %s failed (%s)", monitor.log_dir, err)

    # -- helpers -----------------------------------------------------------

    def _log_train(self, step: int, logs: dict[str, Any]) -> None:
        """Writes the step's metrics, learning rate and gradient norms as one event."""
        monitor = self.monitor
        if monitor is None:
            return
        tags: dict[str, float] = {}
        for key, value in logs.items():
            if not key.startswith("val_") and _is_number(value):
                tags["train/" + _metric_name(key)] = float(value)
        hooked = self._read_hook()  # one device read: rates and norms of the latest step
        if hooked:
            tags.update(hooked)
        if "train/learning_rate" not in tags:
            lr = self._learning_rate()
            if lr is not None:
                tags["train/learning_rate"] = lr
        scale = self._loss_scale()
        if scale is not None:
            tags["train/loss_scale"] = scale
        traces = self._traces()
        if traces is not None:
            tags["train/traces_count"] = float(traces)
        monitor.log_training_step(step, tags)

    def _loss_scale(self) -> float | None:
        """The dynamic loss scale of a mixed-precision (LossScaleOptimizer) model."""
        scale = getattr(getattr(self.model, "optimizer", None), "dynamic_scale", None)
        if scale is None:
            return None
        try:
            return float(keras.ops.convert_to_numpy(scale))
        except Exception:
            return None

    def _traces(self) -> int | None:
        """How many times TensorFlow traced the training step (retracing shows as growth).

        Keras 3 wraps its step in a `tf.function` inside the train function's
        closure; found once per train function. Elsewhere (JAX, PyTorch,
        another Keras) None, and no series.
        """
        fn = getattr(self.model, "train_function", None)
        if fn is None:
            return None
        if self._traced_for is not fn:
            self._traced_for, self._traced = fn, _find_traced(fn)
        if self._traced is None:
            return None
        try:
            return int(self._traced.experimental_get_tracing_count())
        except Exception:
            self._traced = None
            return None

    def _learning_rate(self) -> float | None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return None
        try:
            return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        except Exception:
            return None

    def _log_model(self) -> None:
        self._model_logged = True
        if self.monitor is None:
            return
        try:
            self.monitor.log_model(self.model)
        except Exception as err:  # a model type we cannot count is not worth a failed fit
            logger.warning("ttsmon: cannot log the model's facts (%s)", err)

    def _install_hook(self, fit: _Fit, optimizers: list[Any]) -> None:
        """Wraps each optimizer's ``apply`` so that it records into the model's hook."""
        model = self.model
        try:
            variables = list(model.trainable_variables) if self.gradient_norms else []
            key = (tuple(id(o) for o in optimizers), tuple(id(v) for v in variables))
            hook = _HOOKS.get(model)
            if hook is None or hook.key != key or hook.with_norms != self.gradient_norms:
                hook = _GradientHook(optimizers, variables, self.gradient_norms, key)
                _HOOKS[model] = hook
            train_function = getattr(model, "train_function", None)
            if train_function is not None and not hook.traced_into(train_function):
                # Traced (or about to be) without this hook: by a fit before
                # this callback's, or since a recompile. A fresh one traces
                # at its first step with the wrappers below, once.
                make = getattr(model, "make_train_function", None)
                if callable(make):
                    make(force=True)
                    train_function = getattr(model, "train_function", None)
            hook.remember_train_function(train_function)
            self._hook = hook
            self._hook_seen = hook.values()
            for index, optimizer in enumerate(optimizers):
                own = vars(optimizer).get("apply", _MISSING)
                optimizer.apply = hook.wrap(index, optimizer, optimizer.apply)
                fit.wrapped.append((optimizer, own))
        except Exception as err:
            _unwrap(fit)
            self._hook = None
            logger.warning("ttsmon: gradient norms are off for this fit (%s)", err)

    def _read_hook(self) -> dict[str, float] | None:
        """Rates and norms that the optimizers applied since the last read, as tags."""
        hook = self._hook
        if hook is None:
            return None
        values = hook.values()
        seen, self._hook_seen = self._hook_seen, values
        if len(seen) != len(values) or values[0] == seen[0]:
            return None  # no apply since: a train function traced without the hook
        return hook.tags(values, seen)


class _Fit:
    """One `fit` in progress: what its end undoes."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.wrapped: list[tuple[Any, Any]] = []  # (optimizer, its own `apply` before, or _MISSING)


class _GradientHook:
    """Where the wrapped optimizers' applies leave each step's rates and norms.

    One float32 variable per model, so that logging a step costs one read from
    the device: ``[apply count, then per optimizer: learning rate, squared
    norm of its gradients, apply count at its latest apply; then per layer:
    squared norm, apply count at its latest apply]``. The counts tell which
    optimizers and layers applied since the previous read. The hook outlives
    the callback: a train function traced with it keeps writing into it in
    later fits, with this callback or another.
    """

    def __init__(
        self, optimizers: list[Any], variables: list[Any], with_norms: bool, key: Any
    ) -> None:
        self.key = key
        self.with_norms = with_norms
        self.optimizer_count = len(optimizers)
        names = [variable_name(v) for v in variables]
        self.layers = sorted({layer_of(n) for n in names})
        index = {layer: i for i, layer in enumerate(self.layers)}
        self._variables = variables  # keeps the ids below those of these variables
        self._slot_by_id = {id(v): index[layer_of(n)] for v, n in zip(variables, names)}
        self._slot_by_name = {n: index[layer_of(n)] for n in names}
        self._layer_base = 1 + 3 * self.optimizer_count
        self._train_function: Any = None  # weakref to the train function traced with it
        self._warned = False
        self.variable = keras.Variable(
            initializer="zeros",
            shape=(self._layer_base + 2 * len(self.layers),),
            dtype="float32",
            trainable=False,
            name="ttsmon_gradient_hook",
        )

    def traced_into(self, train_function: Any) -> bool:
        """Whether `train_function` is the one made while this hook was installed."""
        ref = self._train_function
        return ref is not None and ref() is train_function

    def remember_train_function(self, train_function: Any) -> None:
        try:
            self._train_function = weakref.ref(train_function)
        except TypeError:  # not weakly referenceable: hold it
            self._train_function = lambda: train_function

    def values(self) -> list[float]:
        return [float(v) for v in keras.ops.convert_to_numpy(self.variable).tolist()]

    def wrap(self, index: int, optimizer: Any, original: Any) -> Any:
        """An ``apply`` for `optimizer` that records, then calls `original`."""
        hook = self

        def apply(grads: Any, trainable_variables: Any = None) -> Any:
            grads = list(grads)
            variables = None if trainable_variables is None else list(trainable_variables)
            if grads:
                try:
                    applied = variables
                    if applied is None:  # the optimizer's own list, as Keras does
                        applied = list(getattr(optimizer, "_trainable_variables", None) or ())
                    hook._record(index, optimizer, grads, applied)
                except Exception as err:  # the step itself must go on
                    if not hook._warned:  # once: eager steps would repeat it every step
                        hook._warned = True
                        logger.warning("ttsmon: cannot record gradient norms (%s)", err)
            return original(grads, variables)

        return apply

    def _slot(self, variable: Any) -> int | None:
        slot = self._slot_by_id.get(id(variable))
        if slot is None:  # e.g. a tf.Variable that is not the model's own object
            with contextlib.suppress(TypeError):
                slot = self._slot_by_name.get(variable_name(variable))
        return slot

    def _record(self, index: int, optimizer: Any, grads: list[Any], variables: list[Any]) -> None:
        """Builds, at trace time, the ops that store this apply's rate and norms."""
        ops = keras.ops
        var = self.variable
        count = ops.mod(var[0] + 1.0, _COUNT_MOD)
        base = 1 + 3 * index
        indices = [0, base, base + 2]
        updates = [count, ops.cast(optimizer.learning_rate, "float32"), count]
        if self.with_norms:
            total = ops.zeros((), dtype="float32")
            per_slot: dict[int, Any] = {}
            # Variables without a gradient (None) have no norm. A gradient
            # whose variable is not the model's counts in the total only.
            for g, v in zip(grads, variables):
                if g is None:
                    continue
                g = getattr(g, "values", g)  # IndexedSlices (embeddings)
                squared = ops.sum(ops.square(ops.cast(g, "float32")))
                total = total + squared
                slot = self._slot(v)
                if slot is not None:
                    per_slot[slot] = (per_slot[slot] + squared) if slot in per_slot else squared
            indices.append(base + 1)
            updates.append(total)
            for slot, squared in per_slot.items():
                at = self._layer_base + 2 * slot
                indices += [at, at + 1]
                updates += [squared, count]
        var.assign(ops.scatter_update(var, [[i] for i in indices], ops.stack(updates)))

    def tags(self, values: list[float], seen: list[float]) -> dict[str, float]:
        """The tags of what applied between two reads of the variable."""
        out: dict[str, float] = {}
        total = 0.0
        fresh = False
        for k in range(self.optimizer_count):
            base = 1 + 3 * k
            if values[base + 2] == seen[base + 2]:
                continue
            fresh = True
            out.setdefault("train/learning_rate", values[base])
            total += values[base + 1]
        if self.with_norms and fresh:
            out["train/gradient_norm"] = total**0.5
            for slot, layer in enumerate(self.layers):
                at = self._layer_base + 2 * slot
                if values[at + 1] != seen[at + 1]:
                    out[f"gradients/{layer}/norm"] = values[at] ** 0.5
        return out


# One hook per model, kept as long as the model lives (see _GradientHook).
_HOOKS: weakref.WeakKeyDictionary[Any, _GradientHook] = weakref.WeakKeyDictionary()


def _optimizers(model: Any) -> tuple[list[Any], bool]:
    """The model's optimizers, and whether the first one is ``model.optimizer``.

    ``model.optimizer`` first, then those the model holds as attributes (a
    GAN's generator and discriminator optimizers); under mixed precision the
    inner optimizer of a `LossScaleOptimizer`, which sees unscaled gradients.
    """
    candidates = [getattr(model, "optimizer", None)]
    with contextlib.suppress(TypeError):
        candidates += list(vars(model).values())
    found: list[Any] = []
    for candidate in candidates:
        if not isinstance(candidate, keras.optimizers.Optimizer):
            continue
        inner = getattr(candidate, "inner_optimizer", None) or candidate
        if not any(inner is f for f in found):
            found.append(inner)
    model_optimizer = getattr(model, "optimizer", None)
    return found, isinstance(model_optimizer, keras.optimizers.Optimizer)


def _base_step(optimizers: list[Any], has_model_optimizer: bool) -> int:
    """The step a fit starts from: the optimizer count, so that a second fit goes on.

    ``model.optimizer``'s iterations when it has applied any step; otherwise
    (a GAN whose compile left the default optimizer unused) the fewest of
    the other optimizers' (a discriminator may apply several times a step).
    """
    counts = []
    for optimizer in optimizers:
        try:
            counts.append(int(keras.ops.convert_to_numpy(optimizer.iterations)))
        except Exception:
            counts.append(0)
    if has_model_optimizer and counts and counts[0] > 0:
        return counts[0]
    return min((c for c in counts if c > 0), default=0)


def _unwrap(fit: _Fit) -> None:
    """Gives each optimizer its own ``apply`` back."""
    wrapped, fit.wrapped = fit.wrapped, []
    for optimizer, own in reversed(wrapped):
        try:
            if own is _MISSING:
                del optimizer.apply  # back to the class's method
            else:
                optimizer.apply = own
        except AttributeError:
            pass


def _watch(callback: MonitorCallback, fit: _Fit) -> None:
    """Ends `fit` for `callback` once `fit`'s frame has left the training thread's stack.

    Keras calls no callback when `fit` raises, so a thread looks every
    `WATCH_S` whether the `fit` call is still running; `on_train_end` stops
    it. Where no `fit` frame is found (callbacks driven by hand), nothing
    is watched and the next `on_train_begin` or the process's exit cleans up.
    """
    frame = _fit_frame(callback.model)
    if frame is None:
        return
    thread_id = threading.get_ident()

    def run(frame: types.FrameType | None = frame) -> None:
        while not fit.done.wait(WATCH_S):
            if not _running(thread_id, frame):
                frame = None  # the fit's locals (its data, say) need not outlive it
                callback._end_fit(fit, aborted=True)
                return

    threading.Thread(target=run, name="ttsmon-keras-fit-watch", daemon=True).start()


def _fit_frame(model: Any) -> types.FrameType | None:
    """The frame of the innermost running ``fit`` of `model`'s class."""
    codes = set()
    for cls in type(model).__mro__:
        method = cls.__dict__.get("fit")
        if method is not None:
            code = getattr(inspect.unwrap(method), "__code__", None)
            if code is not None:
                codes.add(code)
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_code in codes:
            return frame
        frame = frame.f_back
    return None


def _running(thread_id: int, frame: types.FrameType | None) -> bool:
    """Whether `frame` is on the stack of thread `thread_id` now."""
    top: types.FrameType | None = sys._current_frames().get(thread_id)
    while top is not None:
        if top is frame:
            return True
        top = top.f_back
    return False


def _find_traced(fn: Any, depth: int = 0) -> Any:
    """The `tf.function` (it counts its traces) that `fn` closes over, a few levels deep."""
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if hasattr(value, "experimental_get_tracing_count"):
            return value
        if callable(value) and depth < 3:
            found = _find_traced(value, depth + 1)
            if found is not None:
                return found
    return None


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
