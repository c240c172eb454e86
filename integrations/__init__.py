"""Adapters to the outside systems connbot acts on: the PBX, the app backend, probes, tickets, chat."""
