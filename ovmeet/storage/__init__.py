"""Storage: one interface (`Storage`), two backends (local folder, S3)."""

from __future__ import annotations

from ovmeet.storage.base import (
    MAX_CHUNK,
    ByteStream,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    Storage,
    StorageError,
    index_once,
    keys_after,
)
from ovmeet.support.config import Config

__all__ = [
    "MAX_CHUNK",
    "ByteStream",
    "ObjectChanged",
    "ObjectInfo",
    "ObjectNotFound",
    "Storage",
    "StorageError",
    "index_once",
    "keys_after",
    "open_storage",
]


def open_storage(config: Config) -> Storage:
    """The backend `config.storage` names; nothing is contacted until it is used."""
    if config.storage == "s3":
        from ovmeet.storage.s3 import S3Storage

        return S3Storage(config)
    from ovmeet.storage.local import LocalStorage

    return LocalStorage(config.data_dir, threads=config.storage_threads)
