"""Golden payloads: the pinned wire format of every event type and version (see README.md)."""
