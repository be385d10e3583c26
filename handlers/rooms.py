"""OpenVidu Meet - Room (public API), and the internal API's participant-role lookup."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from ovmeet.auth.access import Principal
from ovmeet.rooms import store as rooms
from ovmeet.web.context import client_address, services


async def create_room(body: dict[str, Any], principal: Principal) -> Response:
    s = services()
    options = rooms.options_from_api(body)
    await s.room_creation_quota.spend(principal, client_address())
    room = await rooms.create_room(s.storage, s.config, options)
    return JSONResponse(room.to_json(s.config.base_url))


async def get_rooms(
    fields: str | None = None, page: int | None = None, limit: int | None = None
) -> Response:
    s = services()
    index = s.room_index
    headers = {}
    if page is None and limit is None:  # pagination is opt-in: the array stays an array
        found = await index.all()
    else:
        selected = await index.page(page, limit)
        found = selected.items
        headers = {
            "X-Total-Count": str(selected.total_items),
            "X-Total-Pages": str(selected.total_pages),
            "X-Current-Page": str(selected.number),
        }
    return JSONResponse(
        [rooms.with_fields(room.to_json(s.config.base_url), fields) for room in found],
        headers=headers,
    )


async def get_room(room_name: str, fields: str | None = None) -> Response:
    s = services()
    room = await rooms.get_room(s.storage, room_name)
    return JSONResponse(rooms.with_fields(room.to_json(s.config.base_url), fields))


async def update_room(room_name: str, body: dict[str, Any]) -> Response:
    s = services()
    room = await rooms.update_preferences(s.storage, room_name, body)
    return JSONResponse(room.to_json(s.config.base_url))


async def delete_room(room_name: str) -> Response:
    s = services()
    await rooms.delete_room(s.storage, s.livekit, room_name)
    return Response(status_code=204)


async def get_participant_role(room_name: str, secret: str) -> Response:
    return JSONResponse(await rooms.role_of_secret(services().rooms, room_name, secret))
