"""The schedule of jobs (cron and session-relative times) and the scheduler that runs each slot
once.
"""
