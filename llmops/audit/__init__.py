"""The audit trail: append-only events, hash-chained per organization."""
