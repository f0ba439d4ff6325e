"""Refer a friend: codes, share links, fraud checks and two-sided rewards."""
