"""The front end at `/`: a built single-page app (MEET_FRONTEND_DIR), as the release served it.

A file of the folder is served as it is, except dot-files; any other GET outside the APIs is
answered with `index.html` (never cached, however it is reached), whose router shows the page
(`/room/{roomName}?secret=...`, `/console/...`).
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.staticfiles import StaticFiles

from ovmeet.web.fonts import with_local_fonts
from ovmeet.web.paths import PUBLIC_API, is_front_end


class FrontEnd:
    """Serves `folder`, falling back to its index.html; never below ovmeet's own paths.
    `local_fonts`: index.html links the fonts ovmeet serves, not Google's."""

    def __init__(self, folder: str, local_fonts: bool = False) -> None:
        self.files = StaticFiles(directory=folder)
        self.index = (Path(folder) / "index.html").resolve()
        self.local_fonts = local_fonts
        self._rewritten: tuple[int, str] | None = None  # index.html's mtime, and the page

    async def page(self, request: Request) -> Response:
        path = request.url.path
        if not is_front_end(path) or any(part.startswith(".") for part in path.split("/")):
            raise HTTPException(404)  # dot-files (.env, .git/...) are never the front end's
        try:
            response = await self.files.get_response(
                self.files.get_path(request.scope), request.scope
            )
        except HTTPException as error:
            if error.status_code != 404:
                raise
            return self._index()
        if isinstance(response, FileResponse) and str(response.path) == str(self.index):
            return self._index()
        return response

    def _index(self) -> Response:
        """index.html names the current build's files: never let a browser keep an old one."""
        headers = {"Cache-Control": "no-cache"}
        if self.local_fonts:
            return HTMLResponse(self._page_with_local_fonts(), headers=headers)
        return FileResponse(self.index, headers=headers)

    def _page_with_local_fonts(self) -> str:
        """index.html rewritten once per version of the file (a new build is seen at once)."""
        version = self.index.stat().st_mtime_ns
        if self._rewritten is None or self._rewritten[0] != version:
            page = with_local_fonts(self.index.read_text(encoding="utf-8"))
            self._rewritten = (version, page)
        return self._rewritten[1]


async def no_front_end(_request: Request) -> Response:
    """`/` when no front end is configured: say where one comes from."""
    return JSONResponse(
        {
            "message": "ovmeet serves no front end here: set MEET_FRONTEND_DIR to the folder "
            "of a built OpenVidu Meet front end (the one with index.html) to serve it at /",
            "api": PUBLIC_API,
            "docs": f"{PUBLIC_API}/ui/",
        }
    )
