"""The multipart form of `POST /api/2.0/dbfs/put`, parsed as it streams in.

The legacy databricks CLI's `fs cp` posts `path` and `overwrite` as form fields and the file as
a `file` part. The file part goes straight to a staging file, whatever its size; the small
fields are kept in memory up to a cap. Fields may come before or after the file.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass, field

from kiln.dbfs.store import DbfsStore
from kiln.dbfs.streams import StagedFile
from kiln.errors import InvalidParameterValue, MalformedRequest, RequestTooLarge

__all__ = ["PutForm", "receive_put_form"]


@dataclass
class PutForm:
    """The fields of a form upload and its staged file, if it had one."""

    fields: dict[str, str] = field(default_factory=dict)
    staged: StagedFile | None = None


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    data: bytearray = field(default_factory=bytearray)


class _FormState:
    """The parser's callbacks: they only record; the async caller does the I/O."""

    def __init__(self, field_limit: int) -> None:
        self.field_limit = field_limit
        self.form = PutForm()
        self.part = _Part()
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.file_parts = 0
        self.file_data: list[bytes] = []
        self.ended = False

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name = self.header_value = b""

    def on_headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise MalformedRequest("A form part has no name in its Content-Disposition.")
        self.part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            self.part.is_file = True
            self.file_parts += 1
            if self.file_parts > 1:
                raise InvalidParameterValue("Only one file can be posted to dbfs/put.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.is_file:
            self.file_data.append(data[start:end])
            return
        self.part.data += data[start:end]
        if len(self.part.data) > self.field_limit:
            raise RequestTooLarge(
                f"Form field {self.part.name!r} exceeds {self.field_limit} bytes."
            )

    def on_part_end(self) -> None:
        if not self.part.is_file:
            self.form.fields[self.part.name] = self.part.data.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True


async def receive_put_form(
    store: DbfsStore, content_type: str, chunks: AsyncIterable[bytes], *, field_limit: int
) -> PutForm:
    """Parse a streamed multipart body; its file part (if any) is left in a staging file."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedRequest("The multipart body has no boundary in its Content-Type.")
    state = _FormState(field_limit)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": state.on_part_begin,
            "on_header_field": state.on_header_field,
            "on_header_value": state.on_header_value,
            "on_header_end": state.on_header_end,
            "on_headers_finished": state.on_headers_finished,
            "on_part_data": state.on_part_data,
            "on_part_end": state.on_part_end,
            "on_end": state.on_end,
        },
    )
    staged: StagedFile | None = None
    try:
        async for chunk in chunks:
            try:
                parser.write(chunk)
            except FormParserError as exc:
                raise MalformedRequest(f"Malformed multipart body: {exc}") from None
            if state.file_parts and staged is None:
                staged = await StagedFile(store).open()
            for piece in state.file_data:
                assert staged is not None
                await staged.write(piece)
            state.file_data.clear()
        if not state.ended:
            raise MalformedRequest("The multipart body ended before its closing boundary.")
        if staged is not None:
            await staged.close()
    except BaseException:
        if staged is not None:
            await staged.discard()
        raise
    state.form.staged = staged
    return state.form
