"""The application: settings, wiring, handlers and the CLI."""
