"""What a visitor may upload: size, declared type on the inbox's list, and content that matches the type.

Pure: takes the bytes the browser sent, answers the `InboundAttachment` to store or raises `FileRefused`.
"""

from __future__ import annotations

import unicodedata

from channels.base import InboundAttachment
from channels.webchat.settings import WebchatSettings

# Leading bytes of each binary type we accept; a file claiming the type must start with one of them.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
    "application/pdf": (b"%PDF-",),
}


class FileRefused(ValueError):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def clean_filename(name: str) -> str:
    """The last path segment, without control characters, at most 200 characters; never empty."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    return name[-200:] or "file"


def check_upload(filename: str, content_type: str, data: bytes, settings: WebchatSettings) -> InboundAttachment:
    kind = content_type.split(";", 1)[0].strip().lower()
    if len(data) > settings.max_attachment_bytes:
        raise FileRefused(413, "too_large", f"file: larger than {settings.max_attachment_bytes} bytes")
    if not data:
        raise FileRefused(422, "invalid", "file: empty")
    if kind not in settings.attachment_types:
        raise FileRefused(415, "unsupported_type", f"file: type {kind or 'unknown'!r} is not accepted here")
    signatures = SIGNATURES.get(kind)
    if signatures is not None and not data.startswith(signatures):
        raise FileRefused(415, "unsupported_type", f"file: the content is not {kind}")
    if kind == "text/plain":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRefused(415, "unsupported_type", "file: text/plain must be UTF-8") from exc
    return InboundAttachment(clean_filename(filename), kind, data)
