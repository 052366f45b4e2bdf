"""The verbs: ingest, embed, jobs. Routers and CLI commands call these."""
