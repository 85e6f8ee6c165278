"""Multipart uploads parsed in memory only.

Starlette's form parser spools file parts to a temporary file above 1 MiB; a palm photo must never touch the
disk, so the service parses ``multipart/form-data`` itself with ``python-multipart``'s streaming parser and keeps
every part in a ``bytearray``. Limits are enforced while streaming: a photo larger than
``Settings.max_image_bytes`` is refused with 413 ``image_too_large`` as soon as it crosses the limit.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from palmid.errors import ImageError, ValidationFailed

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 16 * 1024
"""Largest non-file field (the consent JSON, a subject ref)."""
MAX_FIELDS = 8


@dataclass(frozen=True, kw_only=True)
class UploadLimits:
    """What one request may carry."""

    max_file_bytes: int
    max_files: int
    max_field_bytes: int = MAX_FIELD_BYTES
    max_fields: int = MAX_FIELDS

    @property
    def max_body_bytes(self) -> int:
        overhead = 64 * 1024  # part headers and boundaries
        return self.max_files * self.max_file_bytes + self.max_fields * self.max_field_bytes + overhead


@dataclass(frozen=True)
class UploadedForm:
    """Parsed form: file parts (bytes, in memory) and text fields, each by name in upload order."""

    files: Mapping[str, tuple[bytes, ...]]
    fields: Mapping[str, tuple[str, ...]]

    def files_named(self, name: str) -> tuple[bytes, ...]:
        return self.files.get(name, ())

    def field(self, name: str) -> str | None:
        values = self.fields.get(name, ())
        if len(values) > 1:
            raise ValidationFailed(f"field {name!r} given more than once")
        return values[0] if values else None


@dataclass
class _Part:
    name: str = ""
    is_file: bool = False
    data: bytearray = field(default_factory=bytearray)


class _InMemoryMultipart:
    """Callbacks for ``python_multipart.MultipartParser`` that keep everything in memory, with limits."""

    def __init__(self, *, limits: UploadLimits, charset: str) -> None:
        self.limits = limits
        self.charset = charset
        self.files: dict[str, list[bytes]] = {}
        self.fields: dict[str, list[str]] = {}
        self._file_count = 0
        self._field_count = 0
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
        }

    def _on_part_begin(self) -> None:
        self._part = _Part()
        self._disposition = b""

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name is None:
            raise ValidationFailed("each multipart part needs a Content-Disposition name")
        self._part.name = name.decode(self.charset, errors="replace")
        self._part.is_file = b"filename" in options
        if self._part.is_file:
            self._file_count += 1
            if self._file_count > self.limits.max_files:
                raise ValidationFailed(f"too many files (at most {self.limits.max_files})", code="too_many_images")
        else:
            self._field_count += 1
            if self._field_count > self.limits.max_fields:
                raise ValidationFailed("too many form fields")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        size = len(self._part.data) + (end - start)
        if self._part.is_file and size > self.limits.max_file_bytes:
            raise ImageError(f"image larger than {self.limits.max_file_bytes} bytes", code="image_too_large")
        if not self._part.is_file and size > self.limits.max_field_bytes:
            raise ValidationFailed(f"field {self._part.name!r} is too large")
        self._part.data += data[start:end]

    def _on_part_end(self) -> None:
        if self._part.is_file:
            self.files.setdefault(self._part.name, []).append(bytes(self._part.data))
        else:
            text = self._part.data.decode(self.charset, errors="strict")
            self.fields.setdefault(self._part.name, []).append(text)
        self._part = _Part()


async def read_multipart(request: Request, *, limits: UploadLimits) -> UploadedForm:
    """Parse a ``multipart/form-data`` body into memory, enforcing ``limits``. Nothing is written to disk."""
    content_type = request.headers.get("content-type", "")
    media_type, params = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise ValidationFailed("the request body must be multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ValidationFailed("multipart/form-data without a boundary")
    charset = _charset(params.get(b"charset"))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise ImageError("request body too large", code="image_too_large")

    sink = _InMemoryMultipart(limits=limits, charset=charset)
    parser = MultipartParser(boundary, sink.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limits.max_body_bytes:
                raise ImageError("request body too large", code="image_too_large")
            parser.write(chunk)
        parser.finalize()
    except (FormParserError, UnicodeDecodeError) as exc:
        raise ValidationFailed("malformed multipart/form-data body") from exc
    return UploadedForm(
        files={name: tuple(parts) for name, parts in sink.files.items()},
        fields={name: tuple(values) for name, values in sink.fields.items()},
    )


def _charset(raw: bytes | None) -> str:
    name = raw.decode("latin-1") if raw else "utf-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"
