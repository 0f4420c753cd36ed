"""The rater's rules in plain Python: prices, numbers and call classes, tariffs, the directory, re-rating."""
