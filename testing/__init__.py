"""Offline kit: synthetic people, tiny models, a private MongoDB (tests, demo, benchmarks)."""
