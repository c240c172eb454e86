"""app adapter."""
