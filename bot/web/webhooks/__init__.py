"""Inbound webhooks: one module per source (verify, store, enqueue, answer)."""
