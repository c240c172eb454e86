"""The `connbot` command and the process entry points (serve, worker)."""
