"""State: the store (tables, sessions, migrations), the task queue and the built-in desk tickets."""
