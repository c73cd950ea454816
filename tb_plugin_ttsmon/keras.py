"""`MonitorCallback`: the recorder inside Keras `fit`.

Logs loss and metrics, the learning rate, steps per second, validation
metrics, the model's facts, and (where the optimizer allows) the global and
per-layer gradient norms, while a `Monitor` samples the machine.
"""

from __future__ import annotations

import re
from typing import Any

import keras

from tb_plugin_ttsmon.recorder.faults import logger
from tb_plugin_ttsmon.recorder.gradients import layer_of, variable_name
from tb_plugin_ttsmon.recorder.monitor import DEFAULT_LOG_DIR, Monitor

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def _metric_name(key: str) -> str:
    # Keras metric names are the user's (`MeanSquaredError`, `f1 score`...):
    # make them tag components rather than fail a whole training run.
    return _UNSAFE.sub("_", key).strip("_") or "metric"


class MonitorCallback(keras.callbacks.Callback):
    """Records a Keras training run for the ttsmon TensorBoard tab.

    Example::

        model.fit(x, y, epochs=10, validation_data=(xv, yv),
                  callbacks=[ttsmon.keras.MonitorCallback("logs/run1")])

    Args:
      log_dir: The run directory (ignored when `monitor` is given).
      interval: Seconds between system samples.
      update_freq: ``"batch"`` (every batch), ``"epoch"``, or an int N
        (every N batches): how often training metrics are logged.
      gradient_norms: Whether to log the global and per-layer gradient norms.
        It wraps the optimizer's ``apply`` (inner optimizer under mixed
        precision) before the first training step is traced; each norm costs
        one extra read of the gradients on the device.
      profile_steps: ``(first, last)`` training steps (as logged: the
        optimizer's iteration count after the batch, from 1) to capture with
        TensorFlow's profiler; each step is named in the trace.
      monitor: An existing `Monitor` to log into (it is not closed at the end
        of training); default: one created per `fit` and closed after it.
      **monitor_kwargs: Passed to `Monitor` (``writer``, ``flush_s``, ...).

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
        self._step_cm: Any = None
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
        self._hook_var: Any = None  # keras.Variable, see _wrap_optimizer
        self._hook_seen = 0.0
        self._layers: list[str] = []
        self._wrapped: tuple[Any, Any] | None = None  # (optimizer, original apply)

    # -- Keras hooks -------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self._given_monitor is None:
            self.monitor = Monitor(self.log_dir, interval=self.interval, **self._monitor_kwargs)
        optimizer = getattr(self.model, "optimizer", None)
        try:
            self._base_step = int(optimizer.iterations.numpy()) if optimizer is not None else 0
        except Exception:
            self._base_step = 0
        self._completed = 0
        self._epoch_base = 0
        if optimizer is not None and self._wrapped is None:
            self._wrap_optimizer(optimizer)
        if self.profile_steps is not None and self.monitor is not None:
            first, last = self.profile_steps
            self.monitor.profile(first, last - first + 1)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Only while a profile window is asked for: the step context starts and
        # stops the capture and names each step in the trace.
        if self.profile_steps is not None and self.monitor is not None:
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
        self._unwrap_optimizer()
        if self._given_monitor is None and self.monitor is not None:
            self.monitor.close()
        elif self.monitor is not None:
            self.monitor.flush()

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
        hooked = self._read_hook()  # one device read: lr and norms of the last step
        if hooked is not None:
            tags["train/learning_rate"] = hooked[0]
            if len(hooked) > 1:
                tags["train/gradient_norm"] = hooked[1]
                for layer, norm in zip(self._layers, hooked[2:]):
                    tags[f"gradients/{layer}/norm"] = norm
        else:
            lr = self._learning_rate()
            if lr is not None:
                tags["train/learning_rate"] = lr
        monitor._log_training_step(step, tags)

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

    def _wrap_optimizer(self, optimizer: Any) -> None:
        """Makes the optimizer keep each step's learning rate and gradient norms.

        They go into one variable, ``[apply count mod 2**20, learning rate,
        global norm, norm of each layer...]`` (the norms only with
        `gradient_norms`), so that logging a step costs one read from the
        device, and the rate logged is the one the step applied. The count
        tells a fresh value from one left by an earlier step (or by a train
        function traced before the hook).
        """
        inner = getattr(optimizer, "inner_optimizer", None) or optimizer  # LossScaleOptimizer
        try:
            variables = list(self.model.trainable_variables) if self.gradient_norms else []
            names = [variable_name(v) for v in variables]
            layers = sorted({layer_of(n) for n in names})
            index = {layer: i for i, layer in enumerate(layers)}
            owners = [index[layer_of(n)] for n in names]
            ops = keras.ops
            if self._hook_var is None or layers != self._layers:
                # Created once per callback: a train function traced in an
                # earlier fit keeps writing into this same variable.
                self._hook_var = keras.Variable(
                    initializer="zeros",
                    shape=(len(layers) + (3 if self.gradient_norms else 2),),
                    dtype="float32",
                    trainable=False,
                )
            self._layers = layers
            self._hook_seen = float(keras.ops.convert_to_numpy(self._hook_var)[0])
            original = inner.apply
            hook_var = self._hook_var

            with_norms = self.gradient_norms

            def apply(grads: Any, trainable_variables: Any = None) -> Any:
                count = ops.mod(hook_var[0] + 1.0, 2.0**20)
                lr = ops.cast(inner.learning_rate, "float32")
                if not with_norms:
                    hook_var.assign(ops.stack([count, lr]))
                    return original(grads, trainable_variables)
                zero = ops.zeros((), dtype="float32")
                sums = [zero for _ in layers]
                for g, slot in zip(grads, owners):
                    if g is None:
                        continue
                    g = getattr(g, "values", g)  # IndexedSlices (embeddings)
                    sums[slot] = sums[slot] + ops.sum(ops.square(ops.cast(g, "float32")))
                global_norm = ops.sqrt(sum(sums, zero))
                hook_var.assign(ops.stack([count, lr, global_norm, *[ops.sqrt(x) for x in sums]]))
                return original(grads, trainable_variables)

            inner.apply = apply
            self._wrapped = (inner, original)
        except Exception as err:
            self._hook_var = None
            logger.warning("ttsmon: gradient norms are off for this fit (%s)", err)

    def _unwrap_optimizer(self) -> None:
        if self._wrapped is not None:
            inner, _ = self._wrapped
            try:
                del inner.apply  # back to the class's method
            except AttributeError:
                pass
            self._wrapped = None

    def _read_hook(self) -> list[float] | None:
        """[learning rate, global norm, layer norms...] of the latest step, if fresh."""
        if self._hook_var is None:
            return None
        values = keras.ops.convert_to_numpy(self._hook_var).tolist()
        if values[0] == self._hook_seen:
            return None  # train function traced without the hook, or no new step
        self._hook_seen = values[0]
        return [float(v) for v in values[1:]]


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
