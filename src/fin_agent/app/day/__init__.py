"""The trading day: its handlers from scan to report, the agent group that feeds it bars, resume
and audit.
"""
