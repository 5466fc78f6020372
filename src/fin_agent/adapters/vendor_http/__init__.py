"""Calling vendor HTTP APIs politely: a JSON client, shared rate budgets and circuit breakers."""
