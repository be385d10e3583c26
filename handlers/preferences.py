"""OpenVidu Meet - Preferences (public API): security, webhooks, appearance."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from ovmeet.web.context import services


async def get_security_preferences() -> Response:
    return await _show("security")


async def update_security_preferences(body: dict[str, Any]) -> Response:
    return await _update("security", body)


async def get_webhook_preferences() -> Response:
    return await _show("webhooks")


async def update_webhook_preferences(body: dict[str, Any]) -> Response:
    return await _update("webhooks", body)


async def get_appearance_preferences() -> Response:
    return await _show("appearance")


async def update_appearance_preferences(body: dict[str, Any]) -> Response:
    return await _update("appearance", body)


async def _show(section: str) -> Response:
    return JSONResponse((await services().preferences.current()).section(section))


async def _update(section: str, body: dict[str, Any]) -> Response:
    await services().preferences.update(section, body)
    return JSONResponse({"message": f"{section.capitalize()} preferences updated"})
