"""Repository tooling that the checks run: import-linter's allow-list contract types."""
