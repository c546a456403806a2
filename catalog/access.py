"""Who may see and change what in the console: one access function per object kind.

Every console view calls exactly one ``access_*`` function before it reads or
writes anything. The rules:

- the shop is found through the user's own membership only, so a member of
  another shop (or a made-up slug) gets 404, never 403: no existence leak;
- a role below the one needed gets 403;
- the admin role also needs a verified second factor (django-otp): an admin whose
  session is not verified gets ``SecondFactorRequired``, which ``console_view``
  turns into a redirect to the two-factor page;
- objects inside a shop are looked up within that shop only (404 otherwise).

Other apps add their own ``access_<kind>`` functions on top of ``access_shop``.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from catalog.models import ApiKey, Membership, Product, UploadJob

Role = Membership.Role
ROLE_RANK = {Role.VIEWER: 0, Role.MERCHANDISER: 1, Role.ADMIN: 2}


class SecondFactorRequired(PermissionDenied):
    """An admin page was asked for by an admin whose session has no verified TOTP device."""


def role_at_least(role: str, needed: str) -> bool:
    return ROLE_RANK[Role(role)] >= ROLE_RANK[Role(needed)]


def access_shop(user: Any, shop_slug: str, role_needed: str) -> Membership:
    """The user's membership of the shop (with ``.shop`` loaded), if their role suffices."""
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    membership = Membership.objects.select_related("shop").filter(user=user, shop__slug=shop_slug).first()
    if membership is None:
        raise Http404("No such shop.")
    if not role_at_least(membership.role, role_needed):
        raise PermissionDenied(f"This needs the {role_needed} role; you are a {membership.role}.")
    if role_needed == Role.ADMIN and not user.is_verified():
        raise SecondFactorRequired("Admin pages need a verified second factor.")
    return membership


def access_product(user: Any, shop_slug: str, sku: str, role_needed: str) -> tuple[Membership, Product]:
    membership = access_shop(user, shop_slug, role_needed)
    product = Product.objects.filter(shop=membership.shop, sku=sku).select_related("category").first()
    if product is None:
        raise Http404("No such product.")
    return membership, product


def access_api_key(user: Any, shop_slug: str, key_id: int, role_needed: str) -> tuple[Membership, ApiKey]:
    membership = access_shop(user, shop_slug, role_needed)
    key = ApiKey.objects.filter(shop=membership.shop, pk=key_id).select_related("shop").first()
    if key is None:
        raise Http404("No such key.")
    return membership, key


def access_member(user: Any, shop_slug: str, membership_id: int, role_needed: str) -> tuple[Membership, Membership]:
    """The acting user's membership and another membership of the same shop."""
    membership = access_shop(user, shop_slug, role_needed)
    other = Membership.objects.filter(shop=membership.shop, pk=membership_id).select_related("user", "shop").first()
    if other is None:
        raise Http404("No such member.")
    return membership, other


def access_upload_job(user: Any, shop_slug: str, job_id: int, role_needed: str) -> tuple[Membership, UploadJob]:
    membership = access_shop(user, shop_slug, role_needed)
    job = UploadJob.objects.filter(shop=membership.shop, pk=job_id).first()
    if job is None:
        raise Http404("No such upload.")
    return membership, job


def console_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a console view: sign-in required; an admin page without a second factor
    leads to the two-factor page. htmx requests are redirected with HX-Redirect, so a
    login form never lands inside a partial."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            if getattr(request, "htmx", False):
                login = reverse(settings.LOGIN_URL)
                return HttpResponseClientRedirect(f"{login}?{urlencode({'next': _page_path(request)})}")
            return redirect_to_login(request.get_full_path())
        try:
            return view(request, *args, **kwargs)
        except SecondFactorRequired:
            target = f"{reverse('console:two-factor')}?{urlencode({'next': _page_path(request)})}"
            if getattr(request, "htmx", False):
                return HttpResponseClientRedirect(target)
            return HttpResponseRedirect(target)

    return wrapper


def _page_path(request: HttpRequest) -> str:
    """The page to come back to: for an htmx request the page it was made from."""
    htmx = getattr(request, "htmx", None)
    return (htmx and htmx.current_url_abs_path) or request.get_full_path()
