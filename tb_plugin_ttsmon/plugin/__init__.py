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
# samples would show as 10 points. At 10 000, a run of 60 series costs about
# 25 MB in the Rust loader and about 250 MB in the Python one (measured
# figures in plugin/README.md).
DEFAULT_SAMPLES_PER_SERIES = 10_000


class TTSMonLoader(base_plugin.TBLoader):
    """Loads the ttsmon plugin and sets its sampling default."""

    def fix_flags(self, flags: Any) -> None:
        """Keeps 10 000 points per ttsmon series unless the user said otherwise."""
        samples = getattr(flags, "samples_per_plugin", None)
        if isinstance(samples, dict):
            samples.setdefault("ttsmon", DEFAULT_SAMPLES_PER_SERIES)

    def load(self, context: Any) -> Any:
        """Builds the plugin (its imports happen here, not at TensorBoard's start)."""
        from tb_plugin_ttsmon.plugin.plugin import TTSMonPlugin

        return TTSMonPlugin(context)
