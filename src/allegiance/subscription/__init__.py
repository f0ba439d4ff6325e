"""Paid membership (Prime-style): subscriptions to the program's plans and their payments."""
