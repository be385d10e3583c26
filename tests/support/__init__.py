"""What the tests share: the real servers they start (LiveKit, its Egress stand-in, SeaweedFS,
Redis, nginx, ovmeet itself), one typed client of the APIs, media, and small helpers."""
