"""Benchmarks behind ``elim bench NAME``: one module each, with ``register(subparsers)``."""
