"""The bodies the webhook notifiers post: Discord's message with an embed, and a generic JSON."""

from __future__ import annotations

from typing import Any

from fin_agent.ports.notifier import Notification, NotificationSeverity

# Discord's documented limits (characters) for a webhook message and its embeds.
DISCORD_CONTENT_MAX = 2000
DISCORD_DESCRIPTION_MAX = 4096
DISCORD_FIELDS_MAX = 25
DISCORD_FIELD_NAME_MAX = 256
DISCORD_FIELD_VALUE_MAX = 1024
DISCORD_FOOTER_MAX = 2048
DISCORD_EMBED_TOTAL_MAX = 6000
DISCORD_USERNAME_MAX = 80
_BLANK = "\u200b"  # Discord refuses empty field names and values
_COLOURS = {
    NotificationSeverity.INFO: 0x2E86DE,
    NotificationSeverity.WARNING: 0xF39C12,
    NotificationSeverity.ERROR: 0xE74C3C,
    NotificationSeverity.CRITICAL: 0x8E44AD,
}


def discord_payload(message: Notification, *, username: str | None = None) -> dict[str, Any]:
    """A Discord webhook body: the title as `content`, the text and fields in one embed.

    Clips every part to Discord's limits, drops trailing fields past 25 or past the 6000-character
    embed total, and disables mentions so a message can never ping @everyone.
    """
    footer = _clip(f"{message.kind} · {message.event_id}", DISCORD_FOOTER_MAX)
    budget = DISCORD_EMBED_TOTAL_MAX - len(footer)
    embed_fields: list[dict[str, Any]] = []
    for name, value in message.fields[:DISCORD_FIELDS_MAX]:
        name_text = _clip(name, DISCORD_FIELD_NAME_MAX) or _BLANK
        value_text = _clip(value, DISCORD_FIELD_VALUE_MAX) or _BLANK
        if len(name_text) + len(value_text) > budget:
            break
        budget -= len(name_text) + len(value_text)
        inline = len(value_text) <= 40
        embed_fields.append({"name": name_text, "value": value_text, "inline": inline})
    description = _clip(message.text, min(DISCORD_DESCRIPTION_MAX, budget))
    embed: dict[str, Any] = {
        "color": _COLOURS[message.severity],
        "timestamp": message.occurred_at.isoformat(),
        "footer": {"text": footer},
    }
    if description:
        embed["description"] = description
    if embed_fields:
        embed["fields"] = embed_fields
    body: dict[str, Any] = {
        "content": _clip(message.title, DISCORD_CONTENT_MAX),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    }
    if username:
        body["username"] = _clip(username, DISCORD_USERNAME_MAX)
    return body


def json_payload(message: Notification) -> dict[str, Any]:
    """The generic webhook body: every part of the notification, fields as ordered name/value."""
    return {
        "schema": "fin_agent.notification",
        "version": 1,
        "kind": str(message.kind),
        "severity": str(message.severity),
        "title": message.title,
        "text": message.text,
        "fields": [{"name": name, "value": value} for name, value in message.fields],
        "event_id": message.event_id,
        "occurred_at": message.occurred_at.isoformat(),
    }


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
