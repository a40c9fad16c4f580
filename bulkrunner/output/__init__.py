"""What a run tells people and machines: the report, the summary, logs and events, progress,
notifications.
"""
