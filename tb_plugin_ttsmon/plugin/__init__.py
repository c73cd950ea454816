"""The TensorBoard side: the `ttsmon` plugin (issue 3 builds the tab).

This module is the `tensorboard_plugins` entry point, so it imports nothing
heavy: an ImportError here would stop TensorBoard from starting.
"""

from __future__ import annotations

from typing import Any

from tensorboard.plugins import base_plugin


class TTSMonLoader(base_plugin.TBLoader):
    """Builds the ttsmon plugin.

    Until the plugin issue lands, the loader declines (returns None), which
    TensorBoard treats as "plugin not available" without an error.
    """

    def load(self, context: Any) -> None:
        """Returns no plugin yet."""
        return None
