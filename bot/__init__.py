"""connbot: triage bot for VoIP connection-issue tickets."""
