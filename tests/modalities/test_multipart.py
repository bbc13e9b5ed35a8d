"""The incremental multipart parser: the same events whatever the chunking."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.modalities.multipart import MultipartParser, PartData, PartEnd, PartStart, boundary_of

BODY = (
    b"preamble\r\n--b0und\r\n"
    b'Content-Disposition: form-data; name="model"\r\n\r\n'
    b"openai/whisper-1\r\n"
    b"--b0und\r\n"
    b'Content-Disposition: form-data; name="file"; filename="a \\"b\\".wav"\r\n'
    b"Content-Type: audio/wav\r\n\r\n"
    b"RIFF\r\n--b0un almost a boundary\r\n\r\n"
    b"\r\n--b0und--\r\nepilogue"
)


def parse(body: bytes, size: int) -> list[object]:
    parser = MultipartParser(b"b0und")
    events: list[object] = []
    for start in range(0, len(body), size):
        events.extend(parser.feed(body[start : start + size]))
    parser.finish()
    return events


def squash(events: list[object]) -> list[object]:
    """Adjacent data events joined: chunking may split data anywhere."""
    out: list[object] = []
    for event in events:
        if isinstance(event, PartData) and out and isinstance(out[-1], bytes):
            out[-1] += event.data
        else:
            out.append(event.data if isinstance(event, PartData) else event)
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_any_chunking(size: int) -> None:
    events = squash(parse(BODY, size))
    assert events[0] == PartStart(name="model", filename=None, content_type="application/octet-stream")
    assert events[1] == b"openai/whisper-1"
    assert isinstance(events[2], PartEnd)
    assert events[3] == PartStart(name="file", filename='a "b".wav', content_type="audio/wav")
    assert events[4] == b"RIFF\r\n--b0un almost a boundary\r\n\r\n"
    assert isinstance(events[5], PartEnd)
    assert len(events) == 6


def test_truncated_body_is_400() -> None:
    parser = MultipartParser(b"b0und")
    parser.feed(BODY[:60])
    with pytest.raises(GatewayError) as caught:
        parser.finish()
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "multipart/form-data", 'multipart/form-data; boundary=""']
)
def test_boundary_required(content_type: str | None) -> None:
    with pytest.raises(GatewayError):
        boundary_of(content_type)


def test_quoted_boundary() -> None:
    assert boundary_of('multipart/form-data; boundary="a b"') == b"a b"
