"""Audio formats by content, WAV durations, subtitles."""

from __future__ import annotations

import pytest

from gateway.modalities import sound
from providers.adapters.media import Segment

from .helpers import wav_bytes


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (wav_bytes(0.01)[:64], "wav"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "mp3"),
        (b"\xff\xfb\x90\x64\x00\x00", "mp3"),  # MPEG-1 layer III frame, 128 kbit/s
        (b"fLaC\x00\x00\x00\x22", "flac"),
        (b"OggS\x00\x02\x00\x00", "ogg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81", "webm"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00", "m4a"),
        (b"\xff\xff\xff\xff", None),  # sync bits but an invalid frame header
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None),
        (b"%PDF-1.7", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, fmt: str | None) -> None:
    assert sound.sniff(head) == fmt


def test_wav_duration() -> None:
    data = wav_bytes(2.5, rate=16000)
    assert sound.wav_duration(data[:4096], len(data)) == 2.5


def test_subtitles_times() -> None:
    segments = [Segment(0.0, 1.25, " a "), Segment(3661.5, 3662.0, "b")]
    assert sound.srt(segments) == "1\n00:00:00,000 --> 00:00:01,250\na\n\n2\n01:01:01,500 --> 01:01:02,000\nb\n"
    assert sound.vtt(segments).startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\na\n")
