"""The read layer: ttsmon data through a TensorBoard data provider, as plain Python values.

One path serves every consumer: the plugin's routes, `ttsmon export`,
`ttsmon report` and the seed's chart calls. Imports run one way: this
package reads the on-disk format (`tb_plugin_ttsmon.metadata`) and computes
with `tb_plugin_ttsmon.analytics`; it imports nothing of the plugin, the
report or the CLI, and no TensorFlow.

- `reader.Reader`: runs, tags, series, overview, exports, analytics, profiles.
- `logdir.LogdirData`: a logdir loaded by TensorBoard's Python loader, for
  consumers outside TensorBoard.
- `encode.dumps`: the one JSON encoder (NaN / Infinity spelled as strings).
- `downsample.minmax_indices`: spike-keeping downsampling.
- `profiles`: profiler sessions and their xprof summaries.
"""

from __future__ import annotations

from tb_plugin_ttsmon.query import encode, profiles
from tb_plugin_ttsmon.query.downsample import minmax_indices
from tb_plugin_ttsmon.query.logdir import LogdirData
from tb_plugin_ttsmon.query.reader import Reader, Series

__all__ = ["LogdirData", "Reader", "Series", "encode", "minmax_indices", "profiles"]
