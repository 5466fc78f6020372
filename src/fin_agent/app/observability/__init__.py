"""Logs, metrics, traces and notifications."""
