"""Inbound webhooks: one blueprint per source. Each verifies, parses, stores, enqueues and answers."""
