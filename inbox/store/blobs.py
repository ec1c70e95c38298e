"""Attachment bytes on disk under random names; file I/O runs in a worker thread, off the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

COPY_CHUNK = 1 << 16


@dataclass(frozen=True, slots=True)
class StoredBlob:
    storage_name: str
    sha256: str
    size: int


class BlobStore:
    """Writes each blob once under a random name; never trusts a client-supplied filename."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    async def save(self, data: bytes) -> StoredBlob:
        return await asyncio.to_thread(self._save, data)

    def _save(self, data: bytes) -> StoredBlob:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(16)
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / name)
        return StoredBlob(name, hashlib.sha256(data).hexdigest(), len(data))

    async def save_file(self, source: BinaryIO) -> StoredBlob:
        """Copy an open file (read from its current position) into the store, hashing as it goes."""
        return await asyncio.to_thread(self._save_file, source)

    def _save_file(self, source: BinaryIO) -> StoredBlob:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(16)
        temporary = self.directory / f".{name}.tmp"
        digest = hashlib.sha256()
        size = 0
        with open(temporary, "wb") as handle:
            while chunk := source.read(COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / name)
        return StoredBlob(name, digest.hexdigest(), size)

    def path(self, storage_name: str) -> Path:
        if not storage_name.isalnum():
            raise ValueError(f"invalid storage name {storage_name!r}")
        return self.directory / storage_name

    async def read(self, storage_name: str) -> bytes:
        return await asyncio.to_thread(self.path(storage_name).read_bytes)

    async def delete(self, storage_name: str) -> bool:
        """Remove one blob; False when it was already gone."""
        return await asyncio.to_thread(self._delete, storage_name)

    def _delete(self, storage_name: str) -> bool:
        try:
            self.path(storage_name).unlink()
        except FileNotFoundError:
            return False
        return True
