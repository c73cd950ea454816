"""Facts about a model (parameter counts, size, dtypes) for `Monitor.log_model`."""

from __future__ import annotations

from typing import Any


def model_facts(model: Any, name: str | None = None) -> dict[str, Any]:
    """Parameter counts and size of a Keras model or a PyTorch module.

    Args:
      model: A Keras model or a `torch.nn.Module`; told apart by duck typing,
        so neither framework is imported here.
      name: A name for it (default: the model's own name or class).

    Returns:
      The ``model/facts`` document (``parameter_count``, ``size_bytes``, ...).

    Raises:
      TypeError: `model` is neither.
    """
    module = type(model).__module__.split(".", 1)[0]
    if hasattr(model, "named_parameters") and hasattr(model, "state_dict"):  # torch.nn.Module
        total = trainable = size = 0
        for p in model.parameters():
            n = int(p.numel())
            total += n
            size += n * int(p.element_size())
            if p.requires_grad:
                trainable += n
        for b in model.buffers():
            size += int(b.numel()) * int(b.element_size())
        dtypes = sorted({str(p.dtype).replace("torch.", "") for p in model.parameters()})
        return {
            "name": name or type(model).__name__,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "framework": "torch",
            "parameter_count": total,
            "trainable_parameter_count": trainable,
            "size_bytes": size,
            "dtypes": dtypes,
            "layer_count": sum(1 for _ in model.modules()) - 1,
        }
    if hasattr(model, "weights") and hasattr(model, "trainable_weights"):  # Keras
        import numpy as np

        def count(ws: Any) -> int:
            return int(sum(int(np.prod(tuple(w.shape))) for w in ws))

        size = 0
        for w in model.weights:
            size += int(np.prod(tuple(w.shape))) * np.dtype(_dtype_name(w.dtype)).itemsize
        policy = getattr(model, "dtype_policy", None)
        optimizer = getattr(model, "optimizer", None)
        inner = getattr(optimizer, "inner_optimizer", None)  # a LossScaleOptimizer's
        return {
            "name": name or getattr(model, "name", None) or type(model).__name__,
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "framework": module if module in ("keras", "tf_keras") else "keras",
            "parameter_count": count(model.weights),
            "trainable_parameter_count": count(model.trainable_weights),
            "size_bytes": size,
            "dtype_policy": getattr(policy, "name", None) if policy is not None else None,
            "layer_count": len(getattr(model, "layers", []) or []),
            "built": bool(getattr(model, "built", True)),
            # Set by compile(); read by the XLA and mixed-precision findings.
            "jit_compile": _jit_compile(model) if optimizer is not None else None,
            "optimizer": type(inner or optimizer).__name__ if optimizer is not None else None,
            "loss_scale": inner is not None,
        }
    raise TypeError(
        f"log_model needs a Keras model or a PyTorch module, not {type(model).__name__}"
    )


def _jit_compile(model: Any) -> bool | None:
    """Whether the compiled Keras model trains through XLA (its `jit_compile`, resolved)."""
    try:
        value = model.jit_compile
    except Exception:  # not compiled, or a Keras without the attribute
        return None
    return value if isinstance(value, bool) else None


def _dtype_name(dtype: Any) -> str:
    name = getattr(dtype, "name", None) or str(dtype)
    return {"bfloat16": "float16"}.get(name, name)  # numpy lacks bfloat16; same itemsize
