"""The event codec: domain events to stream-entry fields and back, with the registry of versions
and upcasters.
"""
