"""Checks the values that training code hands to the recorder.

Checks run on the caller's thread so that a mistake raises at the call that
made it (a clear `TypeError`/`ValueError`), not later in a background thread.
NaN and Inf pass unchanged: a NaN loss is what users most need to see.
"""

from __future__ import annotations

import numbers
from typing import Any


def to_float(name: str, value: Any) -> float:
    """`value` as a Python float.

    Accepts Python and numpy numbers, and one-element TensorFlow, PyTorch,
    JAX or numpy tensors (reading a GPU tensor waits for it, as `float()`
    always does).

    Raises:
      TypeError: `value` is not a number (a string, None, a dict, ...).
      ValueError: `value` is a tensor with more than one element.
    """
    if isinstance(value, float):
        return value
    if isinstance(value, numbers.Real):  # int, bool, numpy scalars
        return float(value)
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number, not {type(value).__name__} {value!r:.40}")
    shape = getattr(value, "shape", None)
    if shape is not None:
        try:
            size = 1
            for dim in tuple(shape):
                size *= int(dim)
        except (TypeError, ValueError):
            size = -1
        if size != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(shape)}")
        item = getattr(value, "item", None)  # numpy, torch
        if item is None:
            numpy = getattr(value, "numpy", None)  # TensorFlow eager
            if numpy is not None:
                item = numpy().item
        try:
            if item is not None:
                return float(item())
            return float(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a number, not {type(value).__name__}") from err
    if hasattr(value, "__float__"):
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a number, not {type(value).__name__}") from err
    raise TypeError(f"{name} must be a number, not {type(value).__name__}")


def to_step(value: Any, name: str = "step") -> int:
    """`value` as a non-negative int step.

    Raises:
      TypeError: not an integer (floats with a fraction, strings, ...).
      ValueError: negative.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    if isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer()):
        step = int(value)
    elif getattr(value, "shape", None) == () or hasattr(value, "numpy"):
        try:
            step = to_step(to_float(name, value), name)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}") from err
    else:
        raise TypeError(f"{name} must be an int, not {type(value).__name__} {value!r:.40}")
    if step < 0:
        raise ValueError(f"{name} must be >= 0, got {step}")
    return step
