"""The `fin-agent` command line: one module per command group."""
