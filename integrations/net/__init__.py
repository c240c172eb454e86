"""net adapter."""
