"""Earning rules: how many points an order or event is worth."""
