"""System APIs: one port per role, one adapter per vendor."""
