"""The queue everyone can see: `GET /v1/queue`, and each queued experiment's place."""
