"""The invoicer owns customers, contracts, recurring and one-off charges, billing runs, invoices and EDI documents."""
