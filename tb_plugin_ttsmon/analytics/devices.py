"""Which of TensorFlow's GPUs is which of NVML's, where that is known.

NVML numbers the machine's GPUs (``gpu/{i}/...``, as nvidia-smi shows them);
TensorFlow numbers the GPUs it can see (``tf/gpu/{i}/...``): with
``CUDA_VISIBLE_DEVICES=1``, NVML's GPU 1 is TensorFlow's GPU 0, and
``Monitor(gpu_indices=...)`` can sample a GPU that TensorFlow does not use.
Neither the series nor the run facts name the card behind a TensorFlow GPU,
so a match is claimed only where no other reading of the facts is possible:
one GPU in NVML's series and facts, one in TensorFlow's, and, when
``CUDA_VISIBLE_DEVICES`` is set, an entry that names that very NVML GPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_NVML_TAG_RE = re.compile(r"gpu/(\d+)/")
_TF_TAG_RE = re.compile(r"tf/gpu/(\d+)/")


def tf_gpu_to_nvml_gpu(
    tags: Iterable[str], facts: Mapping[str, Any] | None = None
) -> dict[int, int]:
    """TensorFlow GPU index -> NVML GPU index, for the pairs known to be one device.

    Args:
      tags: The run's tags (a mapping of tag -> series will do).
      facts: The run's latest ``run/facts`` document, if any: its ``nvml``
        section (sampled devices, ``CUDA_VISIBLE_DEVICES``) and
        ``tensorflow_devices`` section (TensorFlow's physical GPUs) can only
        rule a match out, or confirm the one the series suggest.

    Returns:
      ``{tf_index: nvml_index}``; empty where the devices are not known to
      match, and then TensorFlow's series stay in absolute bytes.
    """
    nvml: set[int] = set()
    tf: set[int] = set()
    for tag in tags:
        if m := _NVML_TAG_RE.match(tag):
            nvml.add(int(m.group(1)))
        elif m := _TF_TAG_RE.match(tag):
            tf.add(int(m.group(1)))
    # Facts written by another tool may hold anything: only well-formed parts count.
    nvml_facts = _section(facts, "nvml")
    listed = nvml_facts.get("devices")
    devices = [d for d in listed if isinstance(d, Mapping)] if isinstance(listed, list) else []
    nvml.update(d["index"] for d in devices if _is_index(d.get("index")))
    tf_gpus = _section(facts, "tensorflow_devices").get("gpus")
    if isinstance(tf_gpus, list):
        tf.update(range(len(tf_gpus)))
    if len(nvml) != 1 or len(tf) != 1:
        return {}
    (nvml_index,), (tf_index,) = nvml, tf
    visible = nvml_facts.get("cuda_visible_devices")
    if isinstance(visible, str) and visible.strip():
        entries = [e.strip() for e in visible.split(",")]
        uuid = next((d.get("uuid") for d in devices if d.get("index") == nvml_index), None)
        if tf_index >= len(entries) or not _names(entries[tf_index], nvml_index, uuid):
            return {}
    return {tf_index: nvml_index}


def _section(facts: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    value = facts.get(key) if isinstance(facts, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _is_index(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _names(entry: str, index: int, uuid: object) -> bool:
    """Whether a ``CUDA_VISIBLE_DEVICES`` entry names NVML's GPU `index` (as NVML reads it)."""
    if entry.isdigit():
        return int(entry) == index
    if entry.upper().startswith("GPU-") and isinstance(uuid, str):
        return uuid.lower().startswith(entry.lower())
    return False  # MIG-... or a name NVML's facts cannot confirm
