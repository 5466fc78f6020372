"""The event codec: domain events to stream-entry fields and back, with the registry of versions
and the upcasters of every released version. The wire format is pinned by golden payloads per type
and version (tests/golden/README.md): a field change is a new version, an upcaster and a new golden.
"""
