"""actlab's service: HTTP API, spec schemas, store, settings, client and CLI."""
