"""Who may do what: access, refresh and participant tokens, logins and their throttles, revoked
sessions, the access table, quotas, and admitting participants to rooms. May import the layers
below it: `support`, `storage`, `shared`, `livekit`, `preferences` and `rooms`."""
