"""Look at what a server stored, independently of ovmeet's code: the folder, or the bucket."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from minio import Minio

from tests.support.processes import Ovmeet


class Stored:
    def __init__(self, server: Ovmeet) -> None:
        env = server.env
        self.local = Path(env["MEET_DATA_DIR"]) if env["MEET_STORAGE"] == "local" else None
        if self.local is None:
            endpoint = env["MEET_S3_SERVICE_ENDPOINT"].removeprefix("http://")
            self.client = Minio(
                endpoint,
                access_key=env["MEET_S3_ACCESS_KEY"],
                secret_key=env["MEET_S3_SECRET_KEY"],
                secure=False,
                region="us-east-1",
            )
            self.bucket = env["MEET_S3_BUCKET"]
            self.prefix = env["MEET_S3_SUBBUCKET"] + "/"

    def keys(self, prefix: str = "") -> list[str]:
        if self.local is not None:
            base = self.local
            return sorted(
                p.relative_to(base).as_posix()
                for p in base.rglob("*")
                if p.is_file() and p.relative_to(base).as_posix().startswith(prefix)
            )
        objects = self.client.list_objects(self.bucket, prefix=self.prefix + prefix, recursive=True)
        return sorted(str(o.object_name)[len(self.prefix) :] for o in objects)

    def read_json(self, key: str) -> Any:
        if self.local is not None:
            return json.loads((self.local / key).read_text())
        response = self.client.get_object(self.bucket, self.prefix + key)
        try:
            return json.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def put_file(self, key: str, source: Path) -> None:
        """Write a file where LiveKit's egress would have written it."""
        if self.local is not None:
            target = self.local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        else:
            self.client.fput_object(self.bucket, self.prefix + key, str(source))

    def write_json(self, key: str, data: Any) -> None:
        """Write as another host sharing the storage would (no process of this host is told)."""
        body = json.dumps(data).encode()
        if self.local is not None:
            (self.local / key).parent.mkdir(parents=True, exist_ok=True)
            (self.local / key).write_bytes(body)
        else:
            self.client.put_object(self.bucket, self.prefix + key, io.BytesIO(body), len(body))

    def delete(self, key: str) -> None:
        """Delete as another host sharing the storage would."""
        if self.local is not None:
            (self.local / key).unlink()
        else:
            self.client.remove_object(self.bucket, self.prefix + key)
