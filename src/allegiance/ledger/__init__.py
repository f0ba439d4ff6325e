"""The points ledger: double-entry, append-only, integer minor units."""
