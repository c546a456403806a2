"""The console's shell: sign-in, second factor, the shop chooser, the dashboard and
the widget snippets (which span catalog keys and campaigns placements).

The catalog pages live in catalog/views.py; every view checks access through one
``access_*`` function (catalog/access.py).
"""

from typing import Any, cast

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from campaigns.models import Placement
from catalog import console_selectors
from catalog.access import access_shop, console_view
from catalog.console import render_screen
from catalog.models import ApiKey, Membership, Shop
from catalog.selectors import api_keys_for_shop, memberships_for_user
from recsite.forms import TokenForm, device_secret, two_factor_qr_svg


@require_GET
def root(request: HttpRequest) -> HttpResponse:
    return redirect("console:home")


class LoginView(auth_views.LoginView):
    """Django's login; django-axes counts failures and locks out (AXES_* settings)."""

    template_name = "console/auth/login.html"
    redirect_authenticated_user = True
    http_method_names = ["get", "post"]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Refuse other methods before LoginView redirects a signed-in user.
        if request.method is None or request.method.lower() not in self.http_method_names:
            return self.http_method_not_allowed(request, *args, **kwargs)
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "failure_limit": settings.AXES_FAILURE_LIMIT}


class LogoutView(auth_views.LogoutView):
    next_page = "console:login"
    http_method_names = ["post"]


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The shop chooser; with a single shop it goes straight to that shop's dashboard."""
    memberships = list(memberships_for_user(cast(int, request.user.pk)))
    if len(memberships) == 1:
        return redirect("console:dashboard", shop_slug=memberships[0].shop.slug)
    return render(request, "console/home.html", {"memberships": memberships})


@login_required
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up (first time) or enter (each session) the TOTP second factor.

    Setting up: an unconfirmed device is created once and shown as a QR code and its
    secret; entering a valid token confirms it. Either way a valid token marks the
    session as verified (django-otp), which admin pages require.
    """
    user = request.user
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    device = confirmed or TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = TokenForm(request.POST if request.method == "POST" else None, device=device)
    if request.method == "POST" and form.is_valid():
        if not device.confirmed:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        otp_login(request, device)
        return redirect(next_url or "console:home")
    context: dict[str, Any] = {"form": form, "next": next_url, "setting_up": not device.confirmed}
    if not device.confirmed:
        context["qr_svg"] = two_factor_qr_svg(device)
        context["secret"] = device_secret(device)
    return render(request, "console/auth/two_factor.html", context, status=400 if form.is_bound else 200)


@console_view
@require_GET
def dashboard(request: HttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, Membership.Role.VIEWER)
    shop = membership.shop
    now = timezone.now()
    health = console_selectors.ingestion_health(shop, now)
    return render_screen(
        request,
        "console/dashboard.html",
        {
            "health": health,
            "hours": console_selectors.events_per_hour(shop, now),
            "has_keys": api_keys_for_shop(shop).filter(active=True).exists(),
        },
        membership=membership,
    )


@console_view
@require_GET
def widget(request: HttpRequest, shop_slug: str) -> HttpResponse:
    """Copy-paste snippets: the widget script tag for a publishable key, one div per placement."""
    membership = access_shop(request.user, shop_slug, Membership.Role.VIEWER)
    shop = membership.shop
    keys = list(api_keys_for_shop(shop).filter(active=True, kind=ApiKey.Kind.PUBLISHABLE))
    chosen = next((k for k in keys if k.prefix == request.GET.get("key")), keys[0] if keys else None)
    origin = request.build_absolute_uri("/").rstrip("/")
    return render_screen(
        request,
        "console/integration/widget.html",
        {
            "keys": keys,
            "chosen": chosen,
            "origin": origin,
            "script_src": f"{origin}{settings.STATIC_URL}recsite/widget.js",
            "placements": placement_slugs(shop),
        },
        membership=membership,
        partial="snippets",
    )


def placement_slugs(shop: Shop) -> list[str]:
    return list(Placement.objects.filter(shop=shop).order_by("slug").values_list("slug", flat=True))
