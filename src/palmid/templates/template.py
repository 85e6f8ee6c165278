"""Versioned, multi-sample palm templates and their byte format.

A :class:`Template` records which extractor made it (``extractor_id`` and ``version``) and holds one fixed-size
code blob per enrolled image (``samples``). The byte format is::

    magic  b"PALMTPL1"
    u16    length of the extractor id, then the id (ASCII)
    u32    version
    u32    number of samples
    u32    bytes per sample
    ...    the samples, back to back
    u32    CRC-32 of everything above

The CRC detects corruption (truncation, bit flips); it is not a security measure: storage encrypts templates.
Malformed bytes raise :class:`~palmid.errors.TemplateError` with code ``template_corrupt``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from palmid.errors import TemplateError

__all__ = ["TEMPLATE_MAGIC", "Template"]

TEMPLATE_MAGIC = b"PALMTPL1"
_MAX_ID_CHARS = 64
_MAX_SAMPLES = 64
_MAX_SAMPLE_BYTES = 1 << 20
_HEAD = struct.Struct("<III")
_CRC = struct.Struct("<I")
_ID_LEN = struct.Struct("<H")


@dataclass(frozen=True)
class Template:
    """A palm template: extractor identity plus one code blob per enrolled image (all the same size)."""

    extractor_id: str
    version: int
    samples: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.extractor_id or len(self.extractor_id) > _MAX_ID_CHARS or not self.extractor_id.isascii():
            raise TemplateError("template extractor id is empty, too long or not ASCII", code="template_corrupt")
        if self.version < 0 or self.version >= 1 << 32:
            raise TemplateError("template version out of range", code="template_corrupt")
        if not self.samples or len(self.samples) > _MAX_SAMPLES:
            raise TemplateError("template needs 1 to 64 samples", code="template_corrupt")
        size = len(self.samples[0])
        if size == 0 or size > _MAX_SAMPLE_BYTES or any(len(sample) != size for sample in self.samples):
            raise TemplateError("template samples must be non-empty and all the same size", code="template_corrupt")

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    @property
    def sample_bytes(self) -> int:
        return len(self.samples[0])

    def to_bytes(self) -> bytes:
        """Serialise with magic header and CRC-32 trailer."""
        ident = self.extractor_id.encode("ascii")
        body = b"".join(
            [
                TEMPLATE_MAGIC,
                _ID_LEN.pack(len(ident)),
                ident,
                _HEAD.pack(self.version, self.n_samples, self.sample_bytes),
                *self.samples,
            ]
        )
        return body + _CRC.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes) -> Template:
        """Parse :meth:`to_bytes` output; anything malformed raises ``TemplateError(template_corrupt)``."""
        view = bytes(data)
        minimum = len(TEMPLATE_MAGIC) + _ID_LEN.size + _HEAD.size + _CRC.size
        if len(view) < minimum or not view.startswith(TEMPLATE_MAGIC):
            raise TemplateError("not a palm template (bad magic or too short)", code="template_corrupt")
        body, trailer = view[: -_CRC.size], view[-_CRC.size :]
        if _CRC.unpack(trailer)[0] != zlib.crc32(body):
            raise TemplateError("template integrity check failed", code="template_corrupt")
        offset = len(TEMPLATE_MAGIC)
        (id_len,) = _ID_LEN.unpack_from(body, offset)
        offset += _ID_LEN.size
        if id_len == 0 or id_len > _MAX_ID_CHARS or offset + id_len + _HEAD.size > len(body):
            raise TemplateError("template header is malformed", code="template_corrupt")
        try:
            extractor_id = body[offset : offset + id_len].decode("ascii")
        except UnicodeDecodeError as exc:
            raise TemplateError("template extractor id is not ASCII", code="template_corrupt") from exc
        offset += id_len
        version, n_samples, sample_bytes = _HEAD.unpack_from(body, offset)
        offset += _HEAD.size
        if not 0 < n_samples <= _MAX_SAMPLES or not 0 < sample_bytes <= _MAX_SAMPLE_BYTES:
            raise TemplateError("template header is malformed", code="template_corrupt")
        if len(body) - offset != n_samples * sample_bytes:
            raise TemplateError("template length does not match its header", code="template_corrupt")
        samples = tuple(body[offset + i * sample_bytes : offset + (i + 1) * sample_bytes] for i in range(n_samples))
        return cls(extractor_id=extractor_id, version=version, samples=samples)
