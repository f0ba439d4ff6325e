"""Orders, refunds, cancellations and custom events: what the shop tells us happened."""
