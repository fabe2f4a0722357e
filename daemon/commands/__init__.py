"""The ``e911d`` console script and every command it runs.

Only the CLI entry point imports this layer; it may import every layer below.
"""
