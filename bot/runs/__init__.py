"""Runs: intake of inbound events, classification, identification, routing, the runner and prompts."""
