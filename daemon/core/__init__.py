"""The pure core: the domain values and every decision, with no I/O.

Imports nothing outside the standard library, msgspec and itself, so every rule can
be tested with literals and every layer above can use it.
"""
