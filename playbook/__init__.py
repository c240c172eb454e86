"""Playbooks: the declarative format, its loader, and the pure engine that walks it."""
