"""Product recommendations (item-to-item co-occurrence) and the next best reward."""
