"""Vendor <-> canonical mappings, declared as field maps (:mod:`hub.mapping.fields`) and tested both ways."""
