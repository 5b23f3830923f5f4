"""Business flows: plain functions that know nothing of Lambda events."""
