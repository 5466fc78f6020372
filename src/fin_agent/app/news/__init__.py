"""News as a stream: headlines published once on the bus, their window, and the live run's feed."""
