"""Analytics over ttsmon series: anomalies, heatmap, correlation and findings.

Pure numpy: no TensorBoard, no HTTP. The read layer calls it on the points
the data provider keeps, and a static report can call it on the same arrays.
Every function takes plain columns (wall time in seconds, step, value) and
returns plain Python data; non-finite inputs never raise, and non-finite
numbers may remain in the output as float NaN / Inf for the JSON encoder.

One public face; each part lives in its own module:

* `anomalies`: spikes, non-finite values, level shifts, GPU utilization
  collapses and leaks (`detect_anomalies`, `AnomalyParams`, `Anomaly`).
* `heatmaps`: time buckets x series, scaled to known limits (`heatmap`,
  `limit_of`, `label_of`, `nice_buckets`).
* `devices`: which TensorFlow GPU is which NVML GPU (`tf_gpu_to_nvml_gpu`).
* `correlations`: series on a common grid within a memory budget (`align`,
  `correlation`, `scatter`, `rank_average`).
* `run_findings`: plain-language statements about a run (`findings`, `Finding`).
* `serving`: a TTS server's requests: stage shares over time, time to first
  audio, latency histograms, cold against warm (`serving_view`).
* `jobs`: a distributed job's ranks side by side, and the findings across
  them (`job_view`, `job_findings`, `RankData`, `JobParams`).
* `optimization`: mixed precision, XLA, loss-scale and retracing findings
  from the series, the run and model facts and a profile summary
  (`optimization_findings`).
* `comparison`: two runs side by side: setup differences, speed per step with a
  bootstrap interval, memory, inference, and a verdict (`compare`, `RunSide`).
* `common`: the series protocol (`SeriesLike`, `Columns`) and severities.

Amounts in sentences go through `tb_plugin_ttsmon.units` (bytes in KiB, MiB,
GiB), like every other consumer's.
"""

from __future__ import annotations

from tb_plugin_ttsmon.analytics.anomalies import (
    Anomaly,
    AnomalyParams,
    detect_anomalies,
    detect_collapse,
    detect_leak,
    detect_level_shifts,
    detect_non_finite,
    detect_spikes,
    rolling_baseline,
    train_wall_times,
)
from tb_plugin_ttsmon.analytics.common import SEVERITIES, Columns, SeriesLike
from tb_plugin_ttsmon.analytics.comparison import RunSide, compare
from tb_plugin_ttsmon.analytics.correlations import (
    CORRELATION_BUDGET_BYTES,
    MAX_GRID_CELLS,
    SPEARMAN_RERANK_SHARE,
    Aligned,
    align,
    correlation,
    max_grid_cells,
    pearson_pair,
    rank_average,
    scatter,
    spearman_pair,
)
from tb_plugin_ttsmon.analytics.devices import tf_gpu_to_nvml_gpu
from tb_plugin_ttsmon.analytics.heatmaps import (
    NICE_BUCKETS_S,
    heatmap,
    label_of,
    limit_of,
    nice_buckets,
)
from tb_plugin_ttsmon.analytics.jobs import (
    JobFinding,
    JobParams,
    RankData,
    job_findings,
    job_view,
)
from tb_plugin_ttsmon.analytics.optimization import optimization_findings
from tb_plugin_ttsmon.analytics.run_findings import MIN_SAMPLES, Finding, findings
from tb_plugin_ttsmon.analytics.serving import serving_view

__all__ = [
    "CORRELATION_BUDGET_BYTES",
    "MAX_GRID_CELLS",
    "MIN_SAMPLES",
    "NICE_BUCKETS_S",
    "SEVERITIES",
    "SPEARMAN_RERANK_SHARE",
    "Aligned",
    "Anomaly",
    "AnomalyParams",
    "Columns",
    "Finding",
    "JobFinding",
    "JobParams",
    "RankData",
    "RunSide",
    "SeriesLike",
    "align",
    "compare",
    "correlation",
    "detect_anomalies",
    "detect_collapse",
    "detect_leak",
    "detect_level_shifts",
    "detect_non_finite",
    "detect_spikes",
    "findings",
    "heatmap",
    "job_findings",
    "job_view",
    "label_of",
    "limit_of",
    "max_grid_cells",
    "nice_buckets",
    "optimization_findings",
    "pearson_pair",
    "rank_average",
    "rolling_baseline",
    "scatter",
    "serving_view",
    "spearman_pair",
    "tf_gpu_to_nvml_gpu",
    "train_wall_times",
]
