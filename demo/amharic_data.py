"""The demo's data: Amharic sentences and mel-spectrogram targets made from them.

Nothing is downloaded. Each Ge'ez syllable (fidel) is a consonant row and a
vowel order (the block is laid out as rows of 8), so a "spectrum" can be
derived from the character itself: two formant-like bumps placed by the
vowel order, a noise band placed by the consonant row, for a duration that
depends on the vowel. Frames are smoothed over time so neighbouring
characters blend, as in speech. The result is deterministic, so the model has
something real (if synthetic) to learn, and numpy is all this module needs
(both the Keras and the PyTorch demos use it).
"""

from __future__ import annotations

import unicodedata

import numpy as np

# Short, everyday Amharic sentences written for this demo.
SENTENCES = (
    "ዛሬ አየሩ ጥሩ ነው።",
    "ቡና መጠጣት እወዳለሁ።",
    "እናቴ እንጀራ እየጋገረች ነው።",
    "ልጆቹ በመናፈሻ ውስጥ ይጫወታሉ።",
    "አውቶቡሱ ዘግይቶ መጣ።",
    "ገበያው ዛሬ ብዙ ሰው አለው።",
    "እባክህ ውሃ ስጠኝ።",
    "መጽሐፉን በጠረጴዛው ላይ አስቀምጥ።",
    "ነገ ወደ ሥራ እሄዳለሁ።",
    "ዝናብ እየዘነበ ነው።",
    "ስልኬ ጠፍቷል።",
    "እባክህ በሩን ዝጋው።",
    "ለምሳ ምን እንብላ?",
    "ወንድሜ ሐኪም ነው።",
    "እህቴ በአዲስ አበባ ትኖራለች።",
    "ሻይ ከስኳር ጋር እፈልጋለሁ።",
    "ሰዓቱ ስንት ነው?",
    "ትምህርት ቤቱ ቅርብ ነው።",
    "ድመቷ ወተት ትጠጣለች።",
    "ከባንክ ገንዘብ አወጣሁ።",
    "መንገዱ ዛሬ ተጨናንቋል።",
    "እንኳን ደህና መጣህ።",
    "ጤና ይስጥልኝ።",
    "በጣም አመሰግናለሁ።",
    "ቤታችን ትንሽ ግን ምቹ ነው።",
    "ልብሶቹን አጠብኩ።",
    "አባቴ ጋዜጣ ያነባል።",
    "ከሱቅ ዳቦ ገዛሁ።",
    "ፀሐይ ወጥታለች።",
    "ብርድ ስለሆነ ጃኬት ልበስ።",
    "ባቡሩ በሰዓቱ ደረሰ።",
    "አትክልቶቹን ውሃ አጠጣሁ።",
    "ዶሮዎቹ በጠዋት ይጮኻሉ።",
    "እባክሽ ቴሌቪዥኑን አጥፊው።",
    "ጓደኛዬ ነገ ይመጣል።",
    "ሙዝና ብርቱካን ገዛን።",
    "ነገ የሐኪም ቀጠሮ አለኝ።",
    "ክፍሉ በጣም ሞቃት ነው።",
    "እግር ኳስ ማየት ያስደስተኛል።",
    "መልካም ምሽት።",
)

N_MELS = 80
SAMPLE_RATE = 22050
HOP = 256  # samples per frame: one frame is ~11.6 ms of audio
N_FFT = 1024
PAD_ID = 0  # id 0 is padding (and the silence it stands for)
_SILENT = frozenset(" ?።፣፤፥፦፧፨")
# Frames per character by vowel order (ä u i a e ɨ/none o, then the labialized 8th).
_VOWEL_FRAMES = (5, 5, 5, 6, 5, 3, 5, 6)
# Formant-like mel bins per vowel order (F1, F2), mimicking real vowel formants.
_FORMANTS = ((22, 44), (14, 30), (12, 60), (28, 40), (18, 54), (16, 46), (20, 28), (24, 34))


def is_ethiopic_text(text: str) -> bool:
    """Whether `text` is Ge'ez script (Ethiopic letters and punctuation) and spaces."""
    for ch in text:
        if ch in " ?":
            continue
        if not unicodedata.name(ch, "").startswith("ETHIOPIC"):
            return False
    return True


def vocabulary(sentences: tuple[str, ...] = SENTENCES) -> list[str]:
    """The characters of `sentences`, sorted; a character's id is its index + 1."""
    return sorted({ch for s in sentences for ch in s})


def encode(text: str, vocab: list[str]) -> np.ndarray:
    """Character ids of `text` (unknown characters are dropped)."""
    index = {ch: i + 1 for i, ch in enumerate(vocab)}
    return np.array([index[ch] for ch in text if ch in index], dtype=np.int32)


def durations(text: str) -> np.ndarray:
    """Frames per character: the demo's duration rule (a duration predictor's stand-in)."""
    out = []
    for ch in text:
        if ch == " ":
            out.append(2)
        elif ch in _SILENT:
            out.append(6)
        else:
            out.append(_VOWEL_FRAMES[(ord(ch) - 0x1200) % 8])
    return np.array(out, dtype=np.int32)


def _char_spectrum(ch: str) -> np.ndarray:
    bins = np.arange(N_MELS, dtype=np.float32)
    if ch in _SILENT:
        return np.zeros(N_MELS, np.float32)
    offset = ord(ch) - 0x1200
    row, order = divmod(offset, 8)
    f1, f2 = _FORMANTS[order]
    shift = (row % 7) - 3  # the consonant colours the vowel a little
    spec = np.exp(-0.5 * ((bins - f1 - shift) / 2.5) ** 2)
    spec += 0.7 * np.exp(-0.5 * ((bins - f2 + shift) / 3.5) ** 2)
    # The consonant's burst: a noise-like band high up, placed by the row.
    centre = 56 + (row * 7) % 22
    spec += 0.35 * np.exp(-0.5 * ((bins - centre) / 4.0) ** 2)
    return spec.astype(np.float32)


def mel_target(text: str) -> np.ndarray:
    """The mel-spectrogram target of `text`, shape ``(frames, N_MELS)``, values in [0, 1]."""
    frames = [
        np.repeat(_char_spectrum(ch)[None], d, axis=0) for ch, d in zip(text, durations(text))
    ]
    mel = np.concatenate(frames, axis=0)
    kernel = np.array([0.25, 0.5, 0.25], np.float32)  # smoothing over time: coarticulation
    padded = np.pad(mel, ((1, 1), (0, 0)), mode="edge")
    mel = kernel[0] * padded[:-2] + kernel[1] * padded[1:-1] + kernel[2] * padded[2:]
    return np.clip(mel / 1.2, 0.0, 1.0).astype(np.float32)


def frame_index(text: str, vocab: list[str]) -> np.ndarray:
    """For each frame, the position (from 1) of the character it belongs to.

    This is the alignment a length regulator uses to expand the encoder's
    per-character outputs to frames; position 0 is padding.
    """
    kept = [ch for ch in text if ch in vocab]
    return np.repeat(np.arange(1, len(kept) + 1, dtype=np.int32), durations("".join(kept)))


def inputs(texts: list[str], vocab: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Padded model inputs ``(char ids, frame index)`` for `texts`.

    Char ids are shifted right by one (position 0 holds `PAD_ID`) so that the
    frame index's padding value 0 gathers the padding embedding.
    """
    ids = [np.concatenate([[PAD_ID], encode(t, vocab)]) for t in texts]
    idx = [frame_index(t, vocab) for t in texts]
    chars = np.zeros((len(texts), max(len(i) for i in ids)), np.int32)
    frames = np.zeros((len(texts), max(len(i) for i in idx)), np.int32)
    for k, (c, f) in enumerate(zip(ids, idx)):
        chars[k, : len(c)] = c
        frames[k, : len(f)] = f
    return chars, frames


def batch(texts: list[str], vocab: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded ``(char ids, frame index, mel targets)`` for `texts` (padding frames are silent)."""
    chars, frames = inputs(texts, vocab)
    target = np.zeros((len(texts), frames.shape[1], N_MELS), np.float32)
    for k, text in enumerate(texts):
        mel = mel_target(text)
        target[k, : len(mel)] = mel
    return chars, frames, target


def mel_filterbank() -> np.ndarray:
    """A triangular mel filterbank, shape ``(N_MELS, N_FFT // 2 + 1)``."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    n_bins = N_FFT // 2 + 1
    mel_points = np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(8000.0)), N_MELS + 2)
    hz_points = 700.0 * (10 ** (mel_points / 2595.0) - 1.0)
    fft_bins = np.floor((N_FFT + 1) * hz_points / SAMPLE_RATE).astype(int)
    bank = np.zeros((N_MELS, n_bins), np.float32)
    for m in range(1, N_MELS + 1):
        lo, mid, hi = fft_bins[m - 1], fft_bins[m], fft_bins[m + 1]
        for k in range(lo, mid):
            bank[m - 1, k] = (k - lo) / max(mid - lo, 1)
        for k in range(mid, hi):
            bank[m - 1, k] = (hi - k) / max(hi - mid, 1)
    return bank


class InverseMelVocoder:
    """A trivial vocoder: inverse mel projection, zero phase, overlap-add.

    It sounds like a buzz, not speech; it stands for the vocoder stage of a
    real system (its cost grows with the audio's length, as a vocoder's does).
    """

    def __init__(self) -> None:
        self._inverse = np.linalg.pinv(mel_filterbank()).astype(np.float32)
        self._window = np.hanning(N_FFT).astype(np.float32)

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Waveform (float32, `SAMPLE_RATE` Hz) of a ``(frames, N_MELS)`` mel spectrogram."""
        magnitude = np.maximum(mel @ self._inverse.T, 0.0)  # (frames, n_bins)
        frames = np.fft.irfft(magnitude, n=N_FFT, axis=-1) * self._window
        frames = np.roll(frames, N_FFT // 2, axis=-1)  # centre each zero-phase pulse
        wav = np.zeros(HOP * (len(mel) - 1) + N_FFT, np.float32)
        for i, frame in enumerate(frames):
            wav[i * HOP : i * HOP + N_FFT] += frame
        return wav[: HOP * len(mel)]
