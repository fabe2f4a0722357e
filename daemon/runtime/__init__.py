"""The process: the composition root, the supervisor, OS signals, HTTP, logs, GeoIP.

It builds the services and runs them; nothing below imports it.
"""
