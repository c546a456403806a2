"""Console pages of the catalog: products, data (ingestion, rejections, uploads),
API keys, shoppers, audit log, members and shop settings.

Each view: one access function, one selector or service, one screen (or one of its
partials for htmx). Destructive actions (revoke, remove, erase) ask first: a POST
without ``confirmed`` answers with the confirm dialog and changes nothing.
"""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog import console_selectors, forms, uploads
from catalog.access import (
    access_api_key,
    access_member,
    access_product,
    access_shop,
    access_upload_job,
    console_view,
    role_at_least,
)
from catalog.api_keys import api_key_create, api_key_revoke, api_key_set_origins
from catalog.audit import Actor
from catalog.console import HtmxHttpRequest, paginate, render_screen
from catalog.members import MembershipError, members_of_shop, membership_add, membership_remove, membership_set_role
from catalog.models import Membership
from catalog.selectors import api_keys_for_shop, shopper_by_external_id
from catalog.services import ErasureResult, shopper_erase
from catalog.shop_settings import shop_settings_of, shop_settings_update

VIEWER = Membership.Role.VIEWER
MERCHANDISER = Membership.Role.MERCHANDISER
ADMIN = Membership.Role.ADMIN


# --- Catalog ------------------------------------------------------------------------


@console_view
@require_GET
def products(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    form = forms.ProductFilterForm(request.GET, categories=console_selectors.category_paths(shop))
    page = paginate(request, console_selectors.product_search(shop, form.filters()))
    return render_screen(
        request,
        "console/catalog/products.html",
        {"form": form, "page": page, "filtered": any(request.GET.get(f) for f in form.fields)},
        membership=membership,
        partial="results",
    )


@console_view
@require_GET
def product_detail(request: HtmxHttpRequest, shop_slug: str, sku: str) -> HttpResponse:
    membership, product = access_product(request.user, shop_slug, sku, VIEWER)
    shop = membership.shop
    activity = console_selectors.product_activity(shop, product)
    return render_screen(
        request,
        "console/catalog/product.html",
        {
            "product": product,
            "activity": activity,
            "recent_events": console_selectors.product_recent_events(shop, product) if activity.total_events else [],
            "has_embedding": console_selectors.product_has_embedding(product),
        },
        membership=membership,
    )


# --- Data ---------------------------------------------------------------------------


@console_view
@require_GET
def data_overview(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    now = timezone.now()
    return render_screen(
        request,
        "console/data/overview.html",
        {
            "health": console_selectors.ingestion_health(shop, now),
            "hours": console_selectors.events_per_hour(shop, now),
            "recent_jobs": console_selectors.upload_jobs_recent(shop, limit=5),
        },
        membership=membership,
    )


@console_view
@require_GET
def rejections(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    form = forms.RejectionFilterForm(request.GET)
    page = paginate(request, console_selectors.rejection_search(membership.shop, form.filters()))
    return render_screen(
        request,
        "console/data/rejections.html",
        {"form": form, "page": page, "filtered": any(request.GET.get(f) for f in form.fields)},
        membership=membership,
        partial="results",
    )


def _uploads_screen(
    request: HtmxHttpRequest, membership: Membership, *, form: forms.UploadForm | None = None, status: int = 200
) -> HttpResponse:
    return render_screen(
        request,
        "console/data/uploads.html",
        {
            "form": form or forms.UploadForm(),
            "jobs": console_selectors.upload_jobs_recent(membership.shop),
            "can_upload": role_at_least(membership.role, MERCHANDISER),
        },
        membership=membership,
        partial="uploader",
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def uploads_page(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, MERCHANDISER if request.method == "POST" else VIEWER)
    if request.method == "GET":
        return _uploads_screen(request, membership)
    form = forms.UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _uploads_screen(request, membership, form=form, status=400)
    job = uploads.upload_job_create(
        shop=membership.shop, kind=form.cleaned_data["kind"], upload=form.cleaned_data["file"], user=request.user
    )
    messages.success(request, f"{job.file_name} is uploaded; the import runs in the background.")
    if request.htmx:
        return _uploads_screen(request, membership)
    return redirect("console:upload", shop_slug=membership.shop.slug, job_id=job.pk)


@console_view
@require_GET
def upload_detail(request: HtmxHttpRequest, shop_slug: str, job_id: int) -> HttpResponse:
    """One upload's progress; its card polls this URL every second until the job is finished."""
    membership, job = access_upload_job(request.user, shop_slug, job_id, VIEWER)
    return render_screen(request, "console/data/upload.html", {"job": job}, membership=membership, partial="progress")


# --- Integration: API keys ----------------------------------------------------------


def _keys_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    form: forms.ApiKeyCreateForm | None = None,
    minted: str = "",
    status: int = 200,
) -> HttpResponse:
    return render_screen(
        request,
        "console/integration/keys.html",
        {"form": form or forms.ApiKeyCreateForm(), "keys": list(api_keys_for_shop(membership.shop)), "minted": minted},
        membership=membership,
        partial="keys",
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def api_keys(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, ADMIN)
    if request.method == "GET":
        return _keys_screen(request, membership)
    form = forms.ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _keys_screen(request, membership, form=form, status=400)
    minted = api_key_create(
        shop=membership.shop,
        kind=form.cleaned_data["kind"],
        name=form.cleaned_data["name"],
        allowed_origins=form.cleaned_data["allowed_origins"],
        actor=Actor.for_user(request.user),
    )
    # The raw key is in this one response only: never stored, never put in a redirect.
    return _keys_screen(request, membership, minted=minted.raw)


@console_view
@require_POST
def api_key_revoke_view(request: HtmxHttpRequest, shop_slug: str, key_id: int) -> HttpResponse:
    membership, key = access_api_key(request.user, shop_slug, key_id, ADMIN)
    if not key.active:
        messages.info(request, f"Key {key.prefix} was already revoked.")
    elif request.POST.get("confirmed") != "yes":
        return _confirm(
            request,
            membership,
            title=f"Revoke {key.get_kind_display().lower()} key {key.prefix}?",
            body="Requests with this key fail within seconds. This cannot be undone; create a new key to replace it.",
            action=reverse("console:api-key-revoke", args=[membership.shop.slug, key.pk]),
            confirm_label="Revoke key",
            target="#keys",
            cancel_url=reverse("console:api-keys", args=[membership.shop.slug]),
        )
    else:
        api_key_revoke(key=key, actor=Actor.for_user(request.user))
        messages.success(request, f"Key {key.prefix} is revoked.")
    return _after_change(request, membership, "console:api-keys", lambda: _keys_screen(request, membership))


@console_view
@require_http_methods(["GET", "POST"])
def api_key_origins(request: HtmxHttpRequest, shop_slug: str, key_id: int) -> HttpResponse:
    membership, key = access_api_key(request.user, shop_slug, key_id, ADMIN)
    form = forms.AllowedOriginsForm(initial={"allowed_origins": key.allowed_origins})
    if request.method == "POST":
        form = forms.AllowedOriginsForm(request.POST)
        if form.is_valid():
            api_key_set_origins(
                key=key, allowed_origins=form.cleaned_data["allowed_origins"], actor=Actor.for_user(request.user)
            )
            messages.success(request, f"Allowed origins of key {key.prefix} are saved.")
            return _after_change(request, membership, "console:api-keys", lambda: _keys_screen(request, membership))
    return render_screen(
        request,
        "console/integration/origins.html",
        {"key": key, "form": form},
        membership=membership,
        partial="editor",
        status=400 if form.is_bound else 200,
    )


# --- Shoppers -----------------------------------------------------------------------


def _shoppers_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    form: forms.ShopperLookupForm,
    erasure: ErasureResult | None = None,
    status: int = 200,
) -> HttpResponse:
    shop = membership.shop
    looked_up = form.is_bound and form.is_valid()
    shopper = shopper_by_external_id(shop, form.cleaned_data["shopper_id"]) if looked_up else None
    return render_screen(
        request,
        "console/shoppers/lookup.html",
        {
            "form": form,
            "looked_up": looked_up,
            "shopper_id": form.cleaned_data["shopper_id"] if looked_up else "",
            "summary": console_selectors.shopper_summary(shop, shopper) if shopper else None,
            "erasure": erasure,
            "can_erase": role_at_least(membership.role, ADMIN),
        },
        membership=membership,
        partial="result",
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def shoppers(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Look a shopper up by the shop's id for them. POST keeps the id out of URLs and logs."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    if request.method == "GET":
        return _shoppers_screen(request, membership, form=forms.ShopperLookupForm())
    form = forms.ShopperLookupForm(request.POST)
    return _shoppers_screen(request, membership, form=form, status=200 if form.is_valid() else 400)


@console_view
@require_POST
def shopper_erase_view(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, ADMIN)
    form = forms.ShopperEraseForm(request.POST)
    if not form.is_valid():
        return _shoppers_screen(request, membership, form=form, status=400)
    shopper_id = form.cleaned_data["shopper_id"]
    if not form.cleaned_data["confirmed"]:
        return _confirm(
            request,
            membership,
            title="Erase this shopper?",
            body=(
                "Their events, their profile and the rejected records that name them are deleted for good. "
                "This cannot be undone."
            ),
            action=reverse("console:shopper-erase", args=[membership.shop.slug]),
            confirm_label="Erase shopper",
            target="#lookup-result",
            cancel_url=reverse("console:shoppers", args=[membership.shop.slug]),
            hidden={"shopper_id": shopper_id},
        )
    erasure = shopper_erase(shop=membership.shop, external_id=shopper_id, actor=Actor.for_user(request.user))
    # The erased id is not echoed back into the form: the page shows only the outcome.
    return _shoppers_screen(request, membership, form=forms.ShopperLookupForm(), erasure=erasure)


# --- Audit log ----------------------------------------------------------------------


@console_view
@require_GET
def audit_log(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    choices = console_selectors.audit_choices(membership.shop)
    form = forms.AuditFilterForm(request.GET, actions=choices.actions, object_types=choices.object_types)
    page = paginate(request, console_selectors.audit_search(membership.shop, form.filters()))
    return render_screen(
        request,
        "console/audit/log.html",
        {"form": form, "page": page, "filtered": any(request.GET.get(f) for f in form.fields)},
        membership=membership,
        partial="results",
    )


# --- Members ------------------------------------------------------------------------


def _members_screen(
    request: HtmxHttpRequest, membership: Membership, *, form: forms.MemberAddForm | None = None, status: int = 200
) -> HttpResponse:
    return render_screen(
        request,
        "console/members/members.html",
        {
            "form": form or forms.MemberAddForm(),
            "members": members_of_shop(membership.shop),
            "roles": Membership.Role.choices,
        },
        membership=membership,
        partial="members",
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def members(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, ADMIN)
    if request.method == "GET":
        return _members_screen(request, membership)
    form = forms.MemberAddForm(request.POST)
    if form.is_valid():
        try:
            added = membership_add(
                shop=membership.shop,
                username=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
                actor=Actor.for_user(request.user),
            )
        except MembershipError as error:
            form.add_error("username", str(error))
        else:
            messages.success(request, f"{added.user.get_username()} is now a {added.role} of {membership.shop.name}.")
            return _after_change(request, membership, "console:members", lambda: _members_screen(request, membership))
    return _members_screen(request, membership, form=form, status=400)


@console_view
@require_POST
def member_role(request: HtmxHttpRequest, shop_slug: str, membership_id: int) -> HttpResponse:
    membership, other = access_member(request.user, shop_slug, membership_id, ADMIN)
    form = forms.MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles.")
    else:
        try:
            changed = membership_set_role(
                membership=other, role=form.cleaned_data["role"], actor=Actor.for_user(request.user)
            )
        except MembershipError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"{changed.user.get_username()} is now a {changed.role}.")
    return _after_change(request, membership, "console:members", lambda: _members_screen(request, membership))


@console_view
@require_POST
def member_remove(request: HtmxHttpRequest, shop_slug: str, membership_id: int) -> HttpResponse:
    membership, other = access_member(request.user, shop_slug, membership_id, ADMIN)
    username = other.user.get_username()
    if request.POST.get("confirmed") != "yes":
        return _confirm(
            request,
            membership,
            title=f"Remove {username} from {membership.shop.name}?",
            body="They lose access to this shop's console at once. Their past changes stay in the audit log.",
            action=reverse("console:member-remove", args=[membership.shop.slug, other.pk]),
            confirm_label="Remove member",
            target="#members",
            cancel_url=reverse("console:members", args=[membership.shop.slug]),
        )
    try:
        membership_remove(membership=other, actor=Actor.for_user(request.user))
    except MembershipError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{username} is removed from {membership.shop.name}.")
        if other.pk == membership.pk:
            return redirect("console:home")
    return _after_change(request, membership, "console:members", lambda: _members_screen(request, membership))


# --- Settings -----------------------------------------------------------------------


@console_view
@require_http_methods(["GET", "POST"])
def shop_settings(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, ADMIN)
    shop = membership.shop
    form = forms.ShopSettingsForm(initial=forms.ShopSettingsForm.initial_from(shop_settings_of(shop)))
    if request.method == "POST":
        form = forms.ShopSettingsForm(request.POST)
        if form.is_valid():
            try:
                changed = shop_settings_update(
                    shop=shop, settings=form.to_settings(), actor=Actor.for_user(request.user)
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(None, f"{field}: {' '.join(problems)}")
            else:
                messages.success(request, f"Saved: {', '.join(changed)}." if changed else "Nothing changed.")
                return redirect("console:settings", shop_slug=shop.slug)
    return render_screen(
        request,
        "console/settings/settings.html",
        {"form": form},
        membership=membership,
        status=400 if form.is_bound else 200,
    )


# --- Shared -------------------------------------------------------------------------


def _confirm(
    request: HtmxHttpRequest,
    membership: Membership,
    *,
    title: str,
    body: str,
    action: str,
    confirm_label: str,
    target: str,
    cancel_url: str,
    hidden: dict[str, str] | None = None,
) -> HttpResponse:
    """The confirm dialog: a modal for htmx, a page of its own otherwise. Cancel closes
    the modal (console.js) or, without JavaScript, goes back to ``cancel_url``."""
    return render_screen(
        request,
        "console/components/confirm.html",
        {
            "title": title,
            "body": body,
            "action": action,
            "confirm_label": confirm_label,
            "target": target,
            "hidden": hidden or {},
            "cancel_url": cancel_url,
        },
        membership=membership,
        partial="dialog",
    )


def _after_change(
    request: HtmxHttpRequest, membership: Membership, url_name: str, htmx_response: Callable[[], HttpResponse]
) -> HttpResponse:
    """After a POST: for htmx, the refreshed region (its partial shows the flash messages
    out of band and closes the dialog); otherwise a redirect to the screen (post/redirect/get)."""
    if request.htmx:
        return htmx_response()
    return redirect(url_name, shop_slug=membership.shop.slug)
