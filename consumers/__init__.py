"""Inbound Kafka adapter: event contracts, decoding, the batch consumer loop, dead letters.

Nothing here imports ``daemon``: the daemon hands the loop the callbacks it calls.
"""
