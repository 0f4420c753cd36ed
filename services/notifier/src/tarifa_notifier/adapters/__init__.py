"""Adapters of the notifier: tables and store, SMTP/SMPP/HTTP senders, the dispatcher, the gateway simulator."""
