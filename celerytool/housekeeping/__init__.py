"""Housekeeping of a Celery Redis: ``doctor`` (what uses the database, what is wrong, the fix),
``forget`` (delete stored results) and ``expire`` (give stored results a TTL).

Adapters only: plain data in and out, no click, no rich.
"""
