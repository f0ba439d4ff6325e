"""Automations: triggers (domain events, dates), conditions, delays, guards and actions."""
