"""The rater owns tariffs, the extension directory and aliases, classes of service, allowances and rated calls."""
