"""Model catalog."""
