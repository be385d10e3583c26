"""The front end's font packages (npm), which ovmeet can serve instead of Google Fonts."""

from __future__ import annotations

from pathlib import Path

# The release links Roboto and Material Icons from its page; its components add Material
# Symbols Outlined at run time. Each package is Apache-2.0 or OFL-1.1.
FONT_PACKAGES = {
    "material-icons": "1.13.14",
    "material-symbols": "0.47.5",
    "@fontsource/roboto": "5.3.0",
}
STYLESHEETS = (
    "material-icons/iconfont/filled.css",
    "material-symbols/outlined.css",
    "@fontsource/roboto/300.css",
    "@fontsource/roboto/400.css",
    "@fontsource/roboto/500.css",
)


def missing_stylesheets(folder: str) -> list[str]:
    """The stylesheets of `STYLESHEETS` that `folder` lacks."""
    return [sheet for sheet in STYLESHEETS if not (Path(folder) / sheet).is_file()]
