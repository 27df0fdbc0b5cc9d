"""Organizations, memberships, teams and API keys; the one permission policy."""
