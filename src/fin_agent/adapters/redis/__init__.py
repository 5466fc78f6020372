"""Redis: the Streams event bus, its dead letters, the schedule's slots, and the embedded redis-
server.
"""
