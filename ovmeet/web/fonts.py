"""The front end's web fonts served by ovmeet (MEET_FRONTEND_FONTS_DIR), for deployments that
cannot reach Google Fonts: without them the icons show as words ("videocam", "lock").

The folder is an npm `node_modules` with the packages of `FONT_PACKAGES` (`make fonts` installs
them). When it is set, index.html is served with its Google Fonts links replaced by links to
`/meet/fonts/...`; the build's files are left as they are.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from ovmeet.support.errors import NotFound
from ovmeet.support.fonts import FONT_PACKAGES, STYLESHEETS
from ovmeet.web.paths import FONTS

_SERVED_SUFFIXES = (".css", ".woff2", ".woff")
_SERVED_PACKAGES = tuple(f"{package}/" for package in FONT_PACKAGES)
_GOOGLE_LINK = re.compile(
    r"<link\b[^>]*https://fonts\.(?:googleapis|gstatic)\.com[^>]*>\s*", re.IGNORECASE
)


def with_local_fonts(page: str) -> str:
    """index.html with its Google Fonts links replaced by ovmeet's own."""
    links = "".join(f'<link rel="stylesheet" href="{FONTS}/{sheet}">' for sheet in STYLESHEETS)
    page = _GOOGLE_LINK.sub("", page)
    head_end = page.lower().find("</head>")
    if head_end < 0:
        return links + page
    return page[:head_end] + links + page[head_end:]


class Fonts:
    """Serves the stylesheets and font files of the font packages, nothing else."""

    def __init__(self, folder: str) -> None:
        self.files = StaticFiles(directory=folder)

    async def file(self, request: Request) -> Response:
        path = request.path_params["path"]
        if not path.endswith(_SERVED_SUFFIXES) or not path.startswith(_SERVED_PACKAGES):
            raise NotFound(f"'{path[:200]}' is not one of the front end's fonts")
        response = await self.files.get_response(path, request.scope)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response
