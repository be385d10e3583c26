"""Recordings: the stored recordings and their index, the recorder that starts and stops them on
LiveKit Egress, the one-recording-per-room locks, playback with ranges, and the signals that tell
a room's participants. May import every layer below it, up to `auth`."""
