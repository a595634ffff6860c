"""A multipart body (Testground's /build request) read into memory, part by part, under a
size limit: nothing is written to disk before the parts have been checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from testfleet.hub.errors import ApiError


@dataclass
class Part:
    """One part: its headers (lower-case names) and its bytes."""

    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)

    @property
    def content_type(self) -> str:
        """The part's media type, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_parts(content_type: str, body: AsyncIterator[bytes], limit: int) -> list[Part]:
    """The parts of a multipart body; 400 if it is not one, 413 past `limit` bytes."""
    media, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not media.startswith(b"multipart/") or not boundary:
        raise ApiError(
            400,
            "malformed_body",
            "send multipart/form-data (or multipart/mixed) with a boundary: part 1 the "
            "composition, part 2 the plan's zip, part 3 (optional) a linked SDK's zip",
        )
    parts: list[Part] = []
    header: list[bytes] = [b"", b""]

    def begin() -> None:
        parts.append(Part())

    def data(chunk: bytes, start: int, end: int) -> None:
        parts[-1].data += chunk[start:end]

    def field_name(chunk: bytes, start: int, end: int) -> None:
        header[0] += chunk[start:end]

    def field_value(chunk: bytes, start: int, end: int) -> None:
        header[1] += chunk[start:end]

    def header_end() -> None:
        parts[-1].headers[header[0].decode("latin-1").lower()] = header[1].decode("latin-1")
        header[0], header[1] = b"", b""

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": begin,
            "on_part_data": data,
            "on_header_field": field_name,
            "on_header_value": field_value,
            "on_header_end": header_end,
        },
    )
    size = 0
    try:
        async for chunk in body:
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large", f"the request is over {limit} bytes")
            parser.write(chunk)
        parser.finalize()
    except ApiError:
        raise
    except Exception as error:  # the parser's own errors: a malformed body
        raise ApiError(400, "malformed_body", f"unreadable multipart body: {error}") from None
    return parts
