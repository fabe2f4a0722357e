"""Inbound Kafka adapter: the CloudEvents envelope (read and written), the wire form
of events and their decoding, the batch consumer loop, dead letters, topic names.

It imports only ``daemon.core`` (the domain values it decodes into): the daemon
hands the loop the callbacks it calls.
"""
