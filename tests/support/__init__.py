"""Shared test helpers: sample events, builders and AWS fixtures used by every tier."""
