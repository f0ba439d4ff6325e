"""Periodic jobs and the loop that runs them (in `serve` or `allegiance worker`)."""
