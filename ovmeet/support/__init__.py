"""What every layer may use: the configuration read once at start, the one error hierarchy,
ids, logs, metrics, the process runtime, small bounded caches and keyed locks. Imports nothing
of ovmeet."""
