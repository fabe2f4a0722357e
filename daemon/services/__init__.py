"""The daemon's jobs, one module each, each owning its loop, in-flight work and drain.

Calls go one way: ingest → relay, checks → relay, reevaluation → checks,
housekeeping → relay. None of them imports the composition root.
"""
