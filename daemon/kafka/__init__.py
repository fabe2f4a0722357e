"""Outbound Kafka: client construction (TLS, SASL), the broker probe and topic set-up.

The inbound side (the batch loop, decoding, the envelope, topic names) is the
``consumers`` adapter.
"""
