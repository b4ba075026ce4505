"""The browser dashboard at `/` and the offline API docs, served from this package."""
