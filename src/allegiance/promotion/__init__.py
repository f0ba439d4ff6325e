"""Automatic cart promotions (docs/program.md#promotions)."""
