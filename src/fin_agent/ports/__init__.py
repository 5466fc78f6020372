"""Ports: the capabilities the domain and app need from the outside world, as Protocols."""
