"""Engagement: badges, challenges and streaks (and, elsewhere in this package, games)."""
