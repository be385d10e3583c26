"""LiveKit: its server API (rooms, participants, egress) behind one gateway, and the signed
webhooks it sends. May import `support` and `shared`."""
