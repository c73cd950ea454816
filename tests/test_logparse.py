"""IndexTTS2's timer lines as inference requests (issue 12): the parsers' table and its blocks.

The log text is in exactly the formats the public IndexTTS2 code and users'
logs print; a block ends at its RTF line.
"""

from __future__ import annotations

import pytest

from tb_plugin_ttsmon.recorder import logparse
from tb_plugin_ttsmon.recorder.inference import RequestRecord

V2_BLOCK = """\
>> gpt_gen_time: 6.83 seconds
>> gpt_forward_time: 0.37 seconds
>> s2mel_time: 1.05 seconds
>> bigvgan_time: 0.19 seconds
>> Total inference time: 10.58 seconds
>> Generated audio length: 4.59 seconds
>> RTF: 2.3078
"""

# IndexTTS 2.5: through `logging`, a logger's prefix, padded spacing, no gpt_forward_time.
V25_BLOCK = """\
2025-09-12 10:31:02,114 - indextts.infer_v2 - INFO - >> gpt_gen_time:   26.80 seconds
2025-09-12 10:31:02,115 - indextts.infer_v2 - INFO - >> s2mel_time:   3.12 seconds
2025-09-12 10:31:02,115 - indextts.infer_v2 - INFO - >> bigvgan_time:   0.61 seconds
2025-09-12 10:31:02,115 - indextts.infer_v2 - INFO - >> Total inference time:   34.70 seconds
2025-09-12 10:31:02,116 - indextts.infer_v2 - INFO - >> Generated audio length:   15.02 seconds
2025-09-12 10:31:02,116 - indextts.infer_v2 - INFO - >> RTF:   2.3103
"""

# IndexTTS v1's fast path.
FAST_BLOCK = """\
>> Total fast inference time: 3.21 seconds
>> Generated audio length: 9.80 seconds
>> [fast] RTF: 0.3276
"""

TQDM = (
    "\r  0%|          | 0/120 [00:00<?, ?it/s]"
    "\r 42%|████▏     | 50/120 [00:01<00:01, 38.1it/s]"
    "\r100%|██████████| 120/120 [00:03<00:00, 37.9it/s]"
)


def _parse(text: str, family: str | None = "indextts2", patterns=()) -> list[RequestRecord]:
    out: list[RequestRecord] = []
    errors: list[str] = []
    parser = logparse.BlockParser(
        logparse.make_family(family, [logparse.user_pattern(p) for p in patterns]),
        out.append,
        errors.append,
    )
    for line in text.replace("\r", "\n").split("\n"):
        parser.feed(line)
    parser.close()
    return out


def test_one_indextts2_block_is_one_request():
    (r,) = _parse(V2_BLOCK)
    assert r.latency_ms == pytest.approx(10580.0)
    assert r.audio_s == pytest.approx(4.59)
    assert r.rtf == pytest.approx(2.3078)  # as printed, not recomputed
    assert r.stages == pytest.approx(
        {"gpt_gen": 6830.0, "gpt_forward": 370.0, "s2mel": 1050.0, "bigvgan": 190.0}
    )
    # The total less the stages it printed: 10.58 - 8.44 s.
    assert r.all_stages["unattributed"] == pytest.approx(2140.0)
    scalars = r.scalars()
    assert scalars["inference/latency_ms"] == pytest.approx(10580.0)
    assert scalars["inference/rtf"] == pytest.approx(2.3078)
    assert scalars["inference/stage/unattributed/latency_ms"] == pytest.approx(2140.0)
    assert scalars["inference/audio_s"] == pytest.approx(4.59)


def test_indextts_2_5_logging_and_the_v1_fast_path():
    (r,) = _parse(V25_BLOCK)
    assert r.stages == pytest.approx({"gpt_gen": 26800.0, "s2mel": 3120.0, "bigvgan": 610.0})
    assert r.latency_ms == pytest.approx(34700.0) and r.rtf == pytest.approx(2.3103)
    assert r.all_stages["unattributed"] == pytest.approx(34700.0 - 30530.0)
    (fast,) = _parse(FAST_BLOCK)
    assert fast.latency_ms == pytest.approx(3210.0) and fast.rtf == pytest.approx(0.3276)
    assert fast.stages == {} and fast.all_stages == {}


def test_blocks_among_tqdm_lines_and_other_output():
    text = (
        "Loading checkpoints/gpt.pth ... done\n"
        + TQDM
        + "\n"
        + V2_BLOCK
        + "wrote out_000.wav\n>> some other tool: 5 things\n"
        + TQDM
        + V25_BLOCK
        + 'INFO: 127.0.0.1:51234 - "POST /tts HTTP/1.1" 200 OK\n'
        + FAST_BLOCK
    )
    found = _parse(text)
    assert [round(r.latency_ms) for r in found] == [10580, 34700, 3210]


def test_a_block_missing_lines_records_what_it_has():
    # No total: the latency is the printed RTF times the audio length.
    (r,) = _parse(
        ">> gpt_gen_time: 2.00 seconds\n>> Generated audio length: 4.00 seconds\n>> RTF: 0.7500\n"
    )
    assert r.latency_ms == pytest.approx(3000.0) and r.stages == {"gpt_gen": 2000.0}
    # A block cut off (the program ended, or the next block began): its stages count.
    found = _parse(">> gpt_gen_time: 1.50 seconds\n>> s2mel_time: 0.50 seconds\n" + V2_BLOCK)
    assert [round(r.latency_ms) for r in found] == [2000, 10580]
    assert found[0].rtf is None and found[0].stages == {"gpt_gen": 1500.0, "s2mel": 500.0}
    (last,) = _parse(">> gpt_gen_time: 1.25 seconds\n")  # closed mid-block
    assert last.latency_ms == pytest.approx(1250.0)


@pytest.mark.parametrize(
    "garbage",
    [
        ">> gpt_gen_time: seconds\n",
        ">> RTF: nan-ish\n",
        ">> Total inference time: 1e999999 seconds\n",
        "\x00\x01>> s2mel_time: -3 seconds\n",
        ">> RTF: \n",
    ],
)
def test_malformed_lines_never_stop_the_parser(garbage):
    found = _parse(garbage + V2_BLOCK)
    assert [round(r.latency_ms) for r in found] == [10580]


def test_user_patterns_add_a_model_without_code():
    text = "vocoder took 84 ms\nacoustic model: 1.25 s\nsynthesis done in 1.50 s, rtf=0.42\n"
    (r,) = _parse(
        text,
        family=None,
        patterns=[
            r"vocoder_ms=vocoder took (\d+) ms",
            r"acoustic=acoustic model: ([\d.]+) s",
            r"total=synthesis done in ([\d.]+) s",
            r"rtf=rtf=([\d.]+)",
        ],
    )
    assert r.stages == pytest.approx({"vocoder": 84.0, "acoustic": 1250.0})
    assert r.latency_ms == pytest.approx(1500.0) and r.rtf == pytest.approx(0.42)
    # Added to a family, a user's pattern wins on its line; the rest still parse.
    (both,) = _parse(
        ">> text_norm_ms: 35\n" + V2_BLOCK, patterns=[r"text_norm_ms=text_norm_ms: (\d+)"]
    )
    assert both.stages["text_norm"] == pytest.approx(35.0)
    assert both.all_stages["unattributed"] == pytest.approx(2140.0 - 35.0)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("novalue", "NAME=REGEX"),
        ("=x(1)", "NAME=REGEX"),
        ("bad name=(\\d+)", "not valid"),
        ("gpt=[unclosed(", "bad regular expression"),
        ("gpt=no group", "needs a group"),
        ("rtf_ms=(\\d+)", "rtf has no unit"),
    ],
)
def test_bad_user_patterns_are_refused(spec, words):
    with pytest.raises(ValueError, match=words):
        logparse.user_pattern(spec)


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match=r"unknown log format 'vits'.*indextts2"):
        logparse.make_family("vits")
    with pytest.raises(ValueError, match="give a log format"):
        logparse.make_family(None)
