"""Allegiance: an open-source, API-first loyalty engine for e-commerce."""

__version__ = "0.1.0"
