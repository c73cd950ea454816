"""The format module: tags, units, payloads; and its agreement with docs/format.md."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from tb_plugin_ttsmon import metadata

DOC = (pathlib.Path(__file__).parent.parent / "docs" / "format.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("spec", metadata.METRICS + metadata.DOCUMENTS, ids=lambda s: s.pattern)
def test_every_tag_is_documented_with_its_unit(spec):
    rows = [line for line in DOC.splitlines() if f"`{spec.pattern}`" in line]
    assert rows, f"{spec.pattern} is missing from docs/format.md"
    if spec.kind != metadata.KIND_DOCUMENT:
        cells = [c.strip() for c in rows[0].split("|")]
        # | tag | unit | kind | meaning |
        assert cells[2] == spec.unit or ("{name}" in spec.pattern and cells[2] == "by suffix")
        assert cells[3] == spec.kind


def test_documented_tags_all_exist_in_the_table():
    patterns = {s.pattern for s in metadata.METRICS + metadata.DOCUMENTS}
    documented = set()
    for line in DOC.splitlines():
        if line.startswith("| `") and "/" in line.split("|")[1]:
            documented.update(re.findall(r"`([a-z_]+/[^`]+)`", line.split("|")[1]))
    assert documented <= patterns, documented - patterns


def test_units_and_kinds_of_table_tags():
    assert metadata.spec_for_tag("gpu/3/power_w").unit == "W"
    assert metadata.spec_for_tag("system/cpu_core/11/utilization_percent").kind == "rate"
    assert metadata.spec_for_tag("gradients/encoder/dense/norm").kind == "event"
    assert metadata.spec_for_tag("inference/stage/vocoder/latency_ms").unit == "ms"


@pytest.mark.parametrize(
    ("tag", "unit"),
    [
        ("train/tokens_per_s", "1/s"),
        ("train/mel_l1", ""),
        ("train/batch_bytes", "B"),
        ("val/frames_ms", "ms"),
        ("custom/io_read_bytes_per_s", "B/s"),
    ],
)
def test_user_tags_get_the_unit_of_their_suffix(tag, unit):
    assert metadata.spec_for_tag(tag).unit == unit


@pytest.mark.parametrize("tag", ["", "a b", "a//b", "/a", "a/", "ሰላም", "a<b>", "x" * 257, "a:0"])
def test_invalid_tags_are_rejected(tag):
    with pytest.raises(ValueError):
        metadata.check_tag(tag)


def test_tag_type_is_checked():
    with pytest.raises(TypeError):
        metadata.check_tag(3)


@pytest.mark.parametrize(
    ("name", "sanitized"),
    [
        ("dense_1/kernel:0", "dense_1/kernel"),
        ("encoder.layers.0.weight", "encoder.layers.0.weight"),
        ("my model/Dense (1)/kernel", "my_model/Dense_1_/kernel"),
        ("//x//", "x"),
        (":::", "_"),
    ],
)
def test_layer_names_are_sanitized(name, sanitized):
    assert metadata.sanitize_layer_name(name) == sanitized
    metadata.check_tag(sanitized)


def test_payload_round_trip_and_tolerance():
    md = metadata.create_summary_metadata("gpu/0/temperature_c")
    payload = metadata.parse_plugin_metadata(md.plugin_data.content)
    assert (payload.version, payload.unit, payload.kind) == (1, "°C", "gauge")
    newer = json.dumps({"version": 7, "unit": "W", "kind": "gauge", "future": [1]}).encode()
    assert metadata.parse_plugin_metadata(newer).unit == "W"
    for junk in (b"", b"\xff\xfe", b"[1,2]", b'{"unit": 3}'):
        payload = metadata.parse_plugin_metadata(junk)
        assert payload.unit == "" and payload.kind == "gauge"


def test_documents_hold_non_finite_numbers_as_strings():
    tensor = metadata.document_tensor({"peak": float("nan"), "xs": [float("inf"), 1.0]})
    doc = metadata.decode_document(tensor.string_val[0])
    assert doc == {"peak": "NaN", "xs": ["Infinity", 1.0]}


def test_sample_step_is_milliseconds():
    assert metadata.sample_step(1700000000.1234) == 1700000000123
