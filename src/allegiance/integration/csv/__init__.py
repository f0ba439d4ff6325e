"""Streaming import of orders and members from CSV or JSONL files."""
