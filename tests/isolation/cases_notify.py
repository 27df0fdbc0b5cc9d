from .registry import Case, register

register(
    Case("notify:inbox", kind="list", markers=lambda a: []),
    Case("notify:webhooks", kind="list", markers=lambda a: []),
)
