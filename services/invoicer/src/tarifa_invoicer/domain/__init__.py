"""The invoicer's rules in plain Python: invoice lines, taxes, charges, usage, numbering."""
