"""Context every page needs from tenancy: the organizations of the organization switcher."""

from .selectors import organizations_for_user


def organizations(request):
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return {"my_orgs": organizations_for_user(user=user)}
    return {}
