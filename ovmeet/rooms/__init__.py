"""Rooms: the stored rooms, their secrets and roles, and the index that lists them. May import
`support`, `storage`, `shared` and `livekit`."""
