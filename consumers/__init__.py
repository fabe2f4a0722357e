"""Kafka adapter: event values and their wire form, the CloudEvents envelope (read and
written), IP parsing, the batch consumer loop, dead letters.

Nothing here imports ``daemon``: the daemon hands the loop the callbacks it calls.
"""
