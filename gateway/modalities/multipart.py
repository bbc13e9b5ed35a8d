"""An incremental multipart/form-data parser: bytes in as they arrive, events out.

Nothing is buffered beyond one delimiter's length (plus one part's headers), so a 100 MB
upload passes through in the chunks the server received it in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import bad_request

MAX_HEADER_BYTES = 16 * 1024
_PARAM = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


@dataclass(slots=True)
class PartStart:
    name: str
    filename: str | None
    content_type: str


@dataclass(slots=True)
class PartData:
    data: bytes


class PartEnd:
    __slots__ = ()


Event = PartStart | PartData | PartEnd
END = PartEnd()


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data Content-Type, or 400 naming what is wrong."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise bad_request(f"Expected a multipart/form-data body, got {content_type or 'no Content-Type'}")
    params = content_params(content_type)
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise bad_request("multipart/form-data body without a valid boundary")
    return boundary.encode("latin-1")


def content_params(value: str) -> dict[str, str]:
    return {
        m[1].lower(): re.sub(r"\\(.)", r"\1", m[2]) if m[2] is not None else m[3].strip()
        for m in _PARAM.finditer(value)
    }


def _invalid(detail: str) -> Exception:
    return bad_request(f"Invalid multipart form data: {detail}", code="invalid_multipart")


class MultipartParser:
    __slots__ = ("buffer", "delimiter", "separator", "state")

    def __init__(self, boundary: bytes) -> None:
        self.delimiter = b"--" + boundary
        self.separator = b"\r\n" + self.delimiter
        self.buffer = b""
        self.state = "preamble"  # preamble -> (headers -> body -> after)* -> done

    def feed(self, data: bytes) -> list[Event]:
        self.buffer += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> None:
        if self.state != "done":
            raise _invalid("the body ended before the closing boundary")

    def _step(self, events: list[Event]) -> bool:
        """Advance one state if the buffer allows; False when more bytes are needed."""
        buf = self.buffer
        if self.state == "preamble":
            at = buf.find(self.delimiter)
            if at < 0:
                self.buffer = buf[-len(self.delimiter) :]
                return False
            self.buffer, self.state = buf[at + len(self.delimiter) :], "after"
            return True
        if self.state == "after":
            if len(buf) < 2:
                return False
            if buf.startswith(b"--"):
                self.buffer, self.state = b"", "done"
                return False
            end = buf.find(b"\r\n")
            if end < 0 or buf[:end].strip(b" \t"):
                if end < 0 and len(buf) < 64:
                    return False
                raise _invalid("garbage after a boundary")
            self.buffer, self.state = buf[end + 2 :], "headers"
            return True
        if self.state == "headers":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise _invalid("part headers too long")
                return False
            events.append(_part_start(buf[:end]))
            self.buffer, self.state = buf[end + 4 :], "body"
            return True
        if self.state == "body":
            at = buf.find(self.separator)
            if at < 0:
                keep = len(self.separator) - 1
                if len(buf) > keep:
                    events.append(PartData(buf[:-keep]))
                    self.buffer = buf[-keep:]
                return False
            if at:
                events.append(PartData(buf[:at]))
            events.append(END)
            self.buffer, self.state = buf[at + len(self.separator) :], "after"
            return True
        return False  # done: an epilogue is ignored


def _part_start(raw: bytes) -> PartStart:
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    if not disposition.lower().startswith("form-data"):
        raise _invalid("a part without Content-Disposition: form-data")
    params = content_params(disposition)
    if "name" not in params:
        raise _invalid("a part without a name")
    return PartStart(
        name=params["name"],
        filename=params.get("filename"),
        content_type=headers.get("content-type", "application/octet-stream"),
    )
