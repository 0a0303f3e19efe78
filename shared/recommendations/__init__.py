"""Product recommendations (issue 15): item-to-item collaborative filtering with a popularity fallback."""
