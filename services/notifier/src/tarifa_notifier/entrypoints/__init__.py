"""Entry points of the notifier: the HTTP API, its schemas, the CLI and the service spec."""
