"""The one JSON encoder of every answer: routes, `ttsmon export`, the report's data.

JSON has no NaN or Infinity, yet a NaN loss is the moment the tab matters
most, and facts written by other tools may hold anything. Every non-finite
float, wherever it sits in a document, is written as the string "NaN",
"Infinity" or "-Infinity" (JavaScript's `Number("NaN")` reads them back);
the output never holds a bare ``NaN`` token, which strict parsers reject.

Numpy scalars and arrays become numbers and lists; any other object that
JSON cannot hold becomes its ``str()``, so a strange document can never turn
an answer into a server error.

Cost: the C encoder does the work. Only a document that holds a non-finite
number is walked once in Python first, to spell those numbers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from tb_plugin_ttsmon.units import non_finite_name

_SEPARATORS = (",", ":")


def _default(obj: Any) -> Any:
    # Called by the encoder for what JSON has no type for.
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", errors="replace")
    return str(obj)


def json_safe(obj: Any) -> Any:
    """`obj` with every non-finite float spelled as a string (containers copied)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else non_finite_name(obj)
    if isinstance(obj, dict):
        return {_key(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.floating):
        return json_safe(float(obj))
    return obj


def _key(k: Any) -> Any:
    # json.dumps writes float keys with repr (and NaN as NaN); spell them too.
    if isinstance(k, float) and not math.isfinite(k):
        return non_finite_name(k)
    return k


def dumps(obj: Any) -> str:
    """`obj` as compact UTF-8 JSON text; non-finite numbers as "NaN" / "Infinity" / "-Infinity"."""
    try:
        return json.dumps(
            obj, ensure_ascii=False, allow_nan=False, separators=_SEPARATORS, default=_default
        )
    except ValueError:
        # A non-finite float somewhere (allow_nan=False found it): spell them all.
        # `_default` output is walked too, for numpy arrays holding NaN.
        safe = json_safe(obj)
        return json.dumps(
            safe,
            ensure_ascii=False,
            allow_nan=False,
            separators=_SEPARATORS,
            default=lambda o: json_safe(_default(o)),
        )
