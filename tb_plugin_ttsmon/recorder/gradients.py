"""Gradient norms from TensorFlow, PyTorch or numpy gradients.

The squared norm of each gradient is computed inside its own framework and
all of them are copied to the host in one transfer, so that logging norms of
a model on a GPU costs one synchronisation, not one per variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tb_plugin_ttsmon import metadata


def variable_name(variable: Any) -> str:
    """The name of a variable: Keras 3 ``path``, TF ``name``, or a given string."""
    if isinstance(variable, str):
        return variable
    for attr in ("path", "name"):
        name = getattr(variable, attr, None)
        if isinstance(name, str) and name:
            return name
    raise TypeError(
        f"cannot name variable of type {type(variable).__name__}; "
        "pass names, or a dict {name: gradient}"
    )


def layer_of(name: str) -> str:
    """The layer a variable belongs to, as tag components.

    ``dense_1/kernel:0`` -> ``dense_1``; ``encoder.layers.0.weight`` ->
    ``encoder.layers.0``; a name without a scope is its own layer.
    """
    name = metadata.sanitize_layer_name(name)
    for sep in ("/", "."):
        if sep in name:
            head = name.rsplit(sep, 1)[0]
            if head:
                return head
    return name


def squared_norms(grads: Sequence[Any]) -> np.ndarray:
    """Sum of squares of each gradient (float64), one host transfer per framework.

    `None` entries (variables without a gradient) give 0.0.
    """
    out = np.zeros(len(grads), dtype=np.float64)
    groups: dict[str, list[int]] = {}
    for i, g in enumerate(grads):
        if g is None:
            continue
        module = type(g).__module__.split(".", 1)[0]
        groups.setdefault(module, []).append(i)
    for module, idx in groups.items():
        items = [grads[i] for i in idx]
        if module == "tensorflow" or module == "keras":
            out[idx] = _tf_squared_norms(items)
        elif module == "torch":
            out[idx] = _torch_squared_norms(items)
        else:
            out[idx] = [_np_squared_norm(g) for g in items]
    return out


def _np_squared_norm(g: Any) -> float:
    a = np.asarray(g, dtype=np.float64).ravel()
    return float(np.dot(a, a))


def _tf_squared_norms(grads: list[Any]) -> np.ndarray:
    import tensorflow as tf

    sums = []
    for g in grads:
        if isinstance(g, tf.IndexedSlices):  # embedding gradients
            g = g.values
        g = tf.cast(g, tf.float32)
        sums.append(tf.reduce_sum(tf.square(g)))
    return np.asarray(tf.stack(sums).numpy(), dtype=np.float64)


def _torch_squared_norms(grads: list[Any]) -> np.ndarray:
    import torch

    with torch.no_grad():
        sums = [g.detach().float().pow(2).sum() for g in grads]
        return torch.stack([s.to(sums[0].device) for s in sums]).cpu().double().numpy()


def norms(grads: Any, variables: Any = None) -> tuple[float, dict[str, float]]:
    """The global L2 norm and the L2 norm per layer.

    Args:
      grads: A sequence of gradients aligned with `variables`, or a mapping
        ``{variable name: gradient}`` (PyTorch:
        ``{n: p.grad for n, p in model.named_parameters()}``).
      variables: Variables (or their names) aligned with `grads`; not needed
        when `grads` is a mapping.

    Returns:
      ``(global_norm, {layer: norm})``; layers are `layer_of` the names.

    Raises:
      TypeError: `grads` is neither a sequence nor a mapping, or names are missing.
      ValueError: `grads` and `variables` differ in length.
    """
    if isinstance(grads, Mapping):
        names = [str(k) for k in grads]
        values = list(grads.values())
    else:
        if isinstance(grads, (str, bytes)):
            raise TypeError("grads must be a sequence of gradients or a mapping, not a string")
        try:
            values = list(grads)
        except TypeError as err:
            raise TypeError(
                f"grads must be a sequence or a mapping, not {type(grads).__name__}"
            ) from err
        if variables is None:
            raise TypeError("log_gradients needs `variables` (or a dict {name: gradient})")
        variables = list(variables)
        if len(variables) != len(values):
            raise ValueError(
                f"got {len(values)} gradients but {len(variables)} variables; they must align"
            )
        names = [variable_name(v) for v in variables]
    sq = squared_norms(values)
    per_layer: dict[str, float] = {}
    for name, s, g in zip(names, sq, values):
        if g is None:
            continue
        layer = layer_of(name)
        per_layer[layer] = per_layer.get(layer, 0.0) + float(s)
    total = float(sum(per_layer.values()))
    return math.sqrt(total), {k: math.sqrt(v) for k, v in per_layer.items()}
