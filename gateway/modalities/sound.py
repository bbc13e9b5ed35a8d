"""Audio files by their content: format sniffing, WAV duration, subtitle rendering."""

from __future__ import annotations

import struct

from providers.adapters.media import Segment

FORMATS = ("mp3", "wav", "m4a", "flac", "ogg", "webm")
MIME = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "webm": "audio/webm",
}
SNIFF_BYTES = 4096


def sniff(head: bytes) -> str | None:
    """The audio format the first bytes show, or None: the name of a file proves nothing."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: WebM (and Matroska)
        return "webm"
    if head[4:8] == b"ftyp":  # ISO media: m4a / mp4 audio
        return "m4a"
    if head[:3] == b"ID3" or _mpeg_frame(head):
        return "mp3"
    return None


def _mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a valid version, layer and bitrate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer, bitrate = (head[1] >> 3) & 3, (head[1] >> 1) & 3, head[2] >> 4
    return version != 1 and layer != 0 and bitrate not in (0, 15)


def wav_duration(head: bytes, size: int) -> float | None:
    """Seconds of a PCM WAV from its header (the `data` chunk size, else the file size)."""
    offset, byte_rate = 12, 0
    while offset + 8 <= len(head):
        chunk_id, chunk_size = head[offset : offset + 4], struct.unpack("<I", head[offset + 4 : offset + 8])[0]
        if chunk_id == b"fmt " and offset + 20 <= len(head):
            byte_rate = struct.unpack("<I", head[offset + 16 : offset + 20])[0]
        elif chunk_id == b"data":
            if not byte_rate:
                return None
            data_size = min(chunk_size, size - offset - 8)
            return round(data_size / byte_rate, 3)
        offset += 8 + chunk_size + (chunk_size & 1)
    return None


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: list[Segment]) -> str:
    blocks = [
        f"{number}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
        for number, s in enumerate(segments, 1)
    ]
    return "\n".join(blocks)


def vtt(segments: list[Segment]) -> str:
    blocks = [f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{s.text.strip()}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(blocks)
