"""Exports of members, the ledger and orders for ERP, CRM and BI tools (CSV, JSON Lines)."""
