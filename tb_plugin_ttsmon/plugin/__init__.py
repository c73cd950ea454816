"""The TensorBoard side: the `ttsmon` plugin.

This module is the `tensorboard_plugins` entry point, so it imports nothing
heavy: an ImportError here would stop TensorBoard from starting. The plugin
itself is imported in `load()`.
"""

from __future__ import annotations

from typing import Any

from tensorboard.plugins import base_plugin

# Points kept per ttsmon series by TensorBoard's loaders, unless the user's
# --samples_per_plugin names ttsmon. TensorBoard's defaults for a third-party
# plugin are 10 (Python loader) and 1000 (Rust loader): 3 hours of 1 Hz
# samples would show as 10 points. Each kept point costs about 555 bytes in
# the Rust loader and 750 in the Python one (bench/loader_memory.py), so 5000
# points per series make a 60-series run about 160 MiB (Rust): a 1 Hz sample
# every 17 s over a day, at 5x the memory of a built-in scalar series.
DEFAULT_SAMPLES_PER_SERIES = 5_000


class TTSMonLoader(base_plugin.TBLoader):
    """Loads the ttsmon plugin and sets its sampling default."""

    def fix_flags(self, flags: Any) -> None:
        """Keeps 5000 points per ttsmon series unless the user said otherwise."""
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, dict):
            samples.setdefault("ttsmon", DEFAULT_SAMPLES_PER_SERIES)

    def load(self, context: Any) -> Any:
        """Builds the plugin (its imports happen here, not at TensorBoard's start)."""
        from tb_plugin_ttsmon.plugin.plugin import TTSMonPlugin

        return TTSMonPlugin(context)
