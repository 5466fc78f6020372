"""Notifiers behind the `Notifier` port: Discord and generic JSON webhooks."""
