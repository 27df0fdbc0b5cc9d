"""HTML views of an organization: resolve `/o/<org_slug>/`, build the actor, ask the policy,
and translate service errors once (404 / 403 / message + redirect)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme

from llmops.common.errors import GovernanceError, NotFound, NotPermitted
from llmops.common.http import client_ip

from .actor import Actor
from .policy import can, can_any
from .selectors import membership_for


class OrgMixin(LoginRequiredMixin):
    """Base for every organization page. `action` is the kind of action needed to open it."""

    action: str = "org.view"
    paginate_by = 25

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        membership = membership_for(user=request.user, org_slug=kwargs.get("org_slug", ""))
        if membership is None:
            raise Http404("No such organization.")
        self.org = request.organization = membership.organization
        self.membership = membership
        self.actor = Actor(
            org=membership.organization,
            user=request.user,
            role=membership.role,
            ip=client_ip(request),
        )
        if self.action and not can_any(self.actor, self.action):
            raise PermissionDenied(f"Your role does not allow '{self.action}'.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except ObjectDoesNotExist:
            raise Http404("Not found.")
        except NotFound as exc:
            raise Http404(exc.message)
        except NotPermitted as exc:
            raise PermissionDenied(exc.message)
        except GovernanceError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(self.error_redirect_url())

    def error_redirect_url(self) -> str:
        nxt = (
            self.request.POST.get("next")
            or self.request.headers.get("Referer")
            or self.request.path
        )
        if url_has_allowed_host_and_scheme(nxt, allowed_hosts={self.request.get_host()}):
            return nxt
        return self.request.path

    def require(self, action: str, obj=None) -> None:
        """For showing a page: 403 when the actor may see it but not do this."""
        if not can(self.actor, action, obj):
            raise PermissionDenied(f"You may not do '{action}' here.")

    def paginate(self, queryset, per_page: int | None = None):
        paginator = Paginator(queryset, per_page or self.paginate_by)
        return paginator.get_page(self.request.GET.get("page"))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs) if hasattr(super(), "get_context_data") else {}
        ctx.update(kwargs)
        ctx.setdefault("org", self.org)
        ctx.setdefault("actor", self.actor)
        ctx.setdefault("membership", self.membership)
        return ctx


class OpDispatchMixin:
    """For an `OrgMixin` page whose forms POST an `op`: `ops` maps each op name to the name of
    a method `(target, post) -> response | None`, called with `op_target()` (looked up
    first, so another organization's object is a 404 before the op is read). A method that
    returns nothing ends in `op_done(target)` (a redirect back); an unknown op is a 400 page
    naming it and the ops this page takes."""

    ops: dict[str, str] = {}

    def op_target(self):
        return None

    def op_name(self, request) -> str:
        return request.POST.get("op", "")

    def op_done(self, target):
        return HttpResponseRedirect(self.request.path)

    def post(self, request, *args, **kwargs):
        target = self.op_target()
        name = self.op_name(request)
        method = self.ops.get(name)
        if method is None:
            return TemplateResponse(
                request,
                "common/unknown_op.html",
                {"op": name, "ops": sorted(self.ops), "back": request.path},
                status=400,
            )
        response = getattr(self, method)(target, request.POST)
        return response if response is not None else self.op_done(target)
