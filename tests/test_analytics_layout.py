"""The analytics package: one public face, and imports that run one way.

Analytics is pure numpy over plain columns: it may import numpy, the standard
library, the event format (`metadata`) and the shared formatting (`units`),
never the plugin, the read layer, the recorder, TensorBoard or werkzeug.
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from tb_plugin_ttsmon import analytics

PACKAGE = Path(analytics.__file__).parent
# The format-level modules (no I/O, no web code): the tag table, units, and the
# chart catalogue's tag ordering.
ALLOWED_OWN = {"tb_plugin_ttsmon.metadata", "tb_plugin_ttsmon.units", "tb_plugin_ttsmon.catalogue"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tb_plugin_ttsmon":
                names.update(f"tb_plugin_ttsmon.{a.name}" for a in node.names)
            else:
                names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_each_module_imports_only_numpy_the_stdlib_metadata_and_units(path):
    for name in _imports(path):
        top = name.split(".", 1)[0]
        if top == "tb_plugin_ttsmon":
            assert name in ALLOWED_OWN or name.startswith("tb_plugin_ttsmon.analytics"), name
        else:
            assert top == "numpy" or top in sys.stdlib_module_names, name


def test_importing_analytics_loads_no_web_code():
    code = (
        "import sys, tb_plugin_ttsmon.analytics; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'werkzeug' "
        "or m.startswith(('tb_plugin_ttsmon.plugin', 'tb_plugin_ttsmon.query'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# Every name the rest of the project and its tests use through `analytics.`.
PUBLIC = [
    "Aligned",
    "Anomaly",
    "AnomalyParams",
    "Columns",
    "Finding",
    "SeriesLike",
    "SEVERITIES",
    "NICE_BUCKETS_S",
    "MAX_GRID_CELLS",
    "CORRELATION_BUDGET_BYTES",
    "SPEARMAN_RERANK_SHARE",
    "MIN_SAMPLES",
    "align",
    "correlation",
    "scatter",
    "rank_average",
    "pearson_pair",
    "spearman_pair",
    "max_grid_cells",
    "detect_anomalies",
    "detect_spikes",
    "detect_non_finite",
    "detect_level_shifts",
    "detect_leak",
    "detect_collapse",
    "rolling_baseline",
    "train_wall_times",
    "heatmap",
    "limit_of",
    "label_of",
    "nice_buckets",
    "findings",
    "tf_gpu_to_nvml_gpu",
    # The job view (issue 11).
    "JobFinding",
    "JobParams",
    "RankData",
    "job_findings",
    "job_view",
    # The serving view (issue 12).
    "serving_view",
    # Run comparison and optimization insights (issue 14).
    "RunSide",
    "compare",
    "optimization_findings",
]


def test_the_package_keeps_the_old_modules_public_names():
    assert sorted(analytics.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert hasattr(analytics, name), name
    # The functions, not modules of the same name (hence heatmaps.py, run_findings.py).
    for name in ("findings", "heatmap", "correlation", "align", "scatter", "detect_anomalies"):
        assert inspect.isfunction(getattr(analytics, name)), name
    assert not (PACKAGE.parent / "analytics.py").exists()
