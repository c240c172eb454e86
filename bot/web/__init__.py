"""The web wing: the app factory, the JSON API, the desk pages, health and metrics, the webhooks."""
