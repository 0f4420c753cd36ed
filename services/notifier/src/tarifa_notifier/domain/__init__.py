"""The notifier's rules in plain Python: alerts, silences, inhibition, grouping, routing, watchdogs."""
