"""The live agent: the scheduled jobs of a live day, the live scan, the market feed onto the bus,
and their wiring.
"""
