"""ovmeet: the OpenVidu Meet internal REST API v1 on LiveKit and S3.

The packages are layers; each imports only from the layers above it in this list
(tests/test_layers.py keeps it so):

- `support`: configuration, errors, ids, logs, metrics, small caches and locks;
- `storage`: one storage interface, two backends, and every storage key;
- `shared`: what several processes and instances share (change markers, Redis);
- `livekit`: LiveKit's server API and its signed webhooks;
- `preferences`: the global preferences and the webhooks they send to the application;
- `rooms`: rooms, their index;
- `auth`: tokens, logins, revocations, the access table, quotas, participants;
- `recordings`: recordings, the recorder, their locks, playback;
- `events` (LiveKit's events applied) and `housekeeping` (periodic clean-up);
- `services`: one process's services, wired from the configuration;
- `web` (the only package that knows Connexion, Starlette and uvicorn) and `handlers`;
- `cli`: the command line.
"""
