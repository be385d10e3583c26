"""State shared beyond one request: change markers that tell a process what another changed,
cached views of stored state, and Redis (when configured) for what several instances share. May
import `support` and `storage`."""
