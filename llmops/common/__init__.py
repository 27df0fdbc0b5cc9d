"""Small shared pieces with no business rule: errors, API plumbing, rendering helpers."""
