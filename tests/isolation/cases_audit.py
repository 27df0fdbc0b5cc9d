from .registry import Case, register

register(
    Case("audit:log", kind="list", markers=lambda a: ["acme owners"]),
    Case(
        "audit_api:api_events",
        kind="list",
        markers=lambda a: ["acme owners"],
        scopes=("audit:read",),
    ),
)
