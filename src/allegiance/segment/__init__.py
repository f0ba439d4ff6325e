"""Segments: named groups of members defined by CEL conditions, kept current."""
