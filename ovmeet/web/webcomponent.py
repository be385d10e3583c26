"""The release's `<openvidu-meet>` element at /meet/v1/openvidu-meet.js, for pages that embed a
meeting: any site may load it (no credentials, readable cross-origin), revalidated on each use."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from ovmeet.support.errors import NotFound

CROSS_ORIGIN = {
    "Access-Control-Allow-Origin": "*",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Cache-Control": "no-cache",  # an ETag check per load: a new bundle is used at once
}


class WebComponent:
    """Serves the file MEET_WEBCOMPONENT_FILE names (None: not configured)."""

    def __init__(self, file: str | None) -> None:
        self.file = Path(file).resolve() if file else None
        # StaticFiles answers conditional requests (ETag, Last-Modified) with 304.
        self.files = StaticFiles(directory=self.file.parent, check_dir=False) if self.file else None

    async def script(self, request: Request) -> Response:
        if self.file is None or self.files is None:
            raise NotFound(
                "Embedding's script is not served here: set MEET_WEBCOMPONENT_FILE to the "
                "release's openvidu-meet.bundle.min.js"
            )
        try:
            found = os.stat(self.file)
        except OSError:
            raise NotFound(
                f"Embedding's script is not served here: MEET_WEBCOMPONENT_FILE names no file "
                f"({self.file.name})"
            ) from None
        response = self.files.file_response(self.file, found, request.scope)
        response.headers["content-type"] = "text/javascript; charset=utf-8"
        response.headers.update(CROSS_ORIGIN)
        return response
