"""logs adapter."""
