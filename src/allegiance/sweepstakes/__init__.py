"""Sweepstakes: entries from events or bought with points, a draw anyone can verify."""
