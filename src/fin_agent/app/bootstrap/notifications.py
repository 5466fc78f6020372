"""The notifiers of the webhook secrets that are set (Discord, a JSON webhook), behind one
`NotificationRouter` that the bus's events reach."""

from __future__ import annotations

from fin_agent.adapters.notify.token_bucket import RateLimit
from fin_agent.adapters.notify.webhooks import DiscordNotifier, JsonWebhookNotifier, WebhookConfig
from fin_agent.app.config.settings import Settings
from fin_agent.app.container import Closer
from fin_agent.app.observability.notifications import NotificationRouter
from fin_agent.domain.events import Severity
from fin_agent.ports.notifier import NotificationKind


def notification_router(
    settings: Settings, starters: list[Closer], closers: list[Closer]
) -> NotificationRouter:
    """Notifiers for the webhook secrets that are set, behind one router (none: a no-op)."""
    n = settings.notifications

    def config(max_requests: int, per_secs: float) -> WebhookConfig:
        return WebhookConfig(
            timeout_secs=n.timeout_secs,
            queue_size=n.queue_size,
            max_attempts=n.max_attempts,
            backoff_base_secs=n.backoff_base_secs,
            backoff_max_secs=n.backoff_max_secs,
            max_retry_after_secs=n.max_retry_after_secs,
            drain_timeout_secs=n.drain_timeout_secs,
            rate=RateLimit(max_requests=max_requests, per_secs=per_secs),
        )

    notifiers: list[DiscordNotifier | JsonWebhookNotifier] = []
    if settings.discord_webhook_url is not None:
        notifiers.append(
            DiscordNotifier(
                settings.discord_webhook_url.get_secret_value(),
                config=config(n.discord_max_per_window, n.discord_window_secs),
                username=n.discord_username,
            )
        )
    if settings.webhook_url is not None:
        notifiers.append(
            JsonWebhookNotifier(
                settings.webhook_url.get_secret_value(),
                config=config(n.webhook_max_per_window, n.webhook_window_secs),
            )
        )
    for notifier in notifiers:
        starters.append(notifier.start)
        closers.append(notifier.close)  # after the bus stopped: the daily report still goes out
    return NotificationRouter(
        notifiers,
        kinds=[NotificationKind(k) for k in n.kinds],
        min_error_severity=Severity(n.error_min_severity),
        notify_timeout_secs=n.notify_timeout_secs,
    )
