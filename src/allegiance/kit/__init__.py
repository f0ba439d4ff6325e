"""Building blocks with no business words: expressions, idempotency, clock, ids, money, paging."""
