"""Per-member scores: RFM, CLV (BG/NBD + Gamma-Gamma), P(alive) and churn risk."""
