"""Outbound webhooks: endpoints, signed deliveries (Standard Webhooks), retries and replay."""
