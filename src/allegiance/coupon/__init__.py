"""Coupons: single- and multi-use codes, campaign batches, gift cards."""
