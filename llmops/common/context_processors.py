"""Context every page needs: the CSP nonce for htmx and the nav (the organization switcher
comes from `llmops.tenancy.context_processors`)."""

from django.apps import apps
from django.urls import NoReverseMatch, reverse


def layout(request):
    # django-csp's nonce is lazy and reports False until evaluated: str() it, or the page
    # gets nonce="" and the header no nonce, and the browser blocks every script.
    nonce = getattr(request, "csp_nonce", None)
    ctx = {"csp_nonce": str(nonce) if nonce is not None else ""}
    org = getattr(request, "organization", None)
    if org is not None and getattr(request, "resolver_match", None) is not None:
        nav = []
        for config in apps.get_app_configs():
            for item in getattr(config, "nav_items", ()):
                label, url_name, order = (*item, 50)[:3]
                try:
                    href = reverse(url_name, kwargs={"org_slug": org.slug})
                except NoReverseMatch:
                    continue
                nav.append(
                    {
                        "label": label,
                        "href": href,
                        "order": order,
                        "active": request.path.startswith(href),
                    }
                )
        ctx["nav_items"] = sorted(nav, key=lambda item: item["order"])
    return ctx
