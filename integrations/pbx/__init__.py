"""pbx adapter."""
