"""Console pages of merchandising: placements and strategies, promotions (with the target
builder), the calendar, seasonal boosts and suggestions, experiments.

Each view: one access function, then one selector or service, then one screen (or one
of its htmx partials). Every change goes through campaigns.services, which validates,
audits and lets serving know. Actions that take something away from shoppers (pause,
delete, start, stop, schedule) ask first: a POST without ``confirmed`` answers with the
confirm dialog and changes nothing.

Regions that wait for other parts (documented in the templates and left out until those
URL names exist): the strategy and promotion previews need recommender/serving, the
experiment results and "promote winner" need analytics.
"""

import zoneinfo
from datetime import date, datetime, tzinfo
from functools import partial
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from campaigns import console_selectors, forms, selectors, services
from campaigns.access import (
    access_experiment,
    access_placement,
    access_promotion,
    access_seasonal_boost,
    access_seasonal_suggestion,
    access_strategy,
)
from campaigns.models import Experiment, PlacementKind, Promotion, SeasonalBoost, Strategy
from campaigns.services import MAX_VARIANTS, CampaignsConflict
from campaigns.strategy import DEFAULT_STRATEGIES
from campaigns.tasks import seasonal_suggestions_refresh
from catalog.access import access_shop, console_view, role_at_least
from catalog.audit import Actor
from catalog.console import PAGE_SIZE, HtmxHttpRequest, paginate, render_screen
from catalog.console_selectors import category_paths
from catalog.models import Membership, Shop
from catalog.views import _confirm as confirm_dialog

VIEWER = Membership.Role.VIEWER
MERCHANDISER = Membership.Role.MERCHANDISER


def _role(request: HtmxHttpRequest) -> str:
    """Reading needs the viewer role, changing the merchandiser role."""
    return MERCHANDISER if request.method == "POST" else VIEWER


def _can_edit(membership: Membership) -> bool:
    return role_at_least(membership.role, MERCHANDISER)


def _actor(request: HtmxHttpRequest) -> Actor:
    return Actor.for_user(request.user)


def _go(request: HtmxHttpRequest, url_name: str, *args: Any) -> HttpResponse:
    """After a change: the page to show next. An htmx request (from the confirm dialog)
    loads it as a whole page, where the flash messages show."""
    url = reverse(url_name, args=args)
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


def _local_today(shop: Shop) -> date:
    return timezone.localtime(timezone.now(), timezone=zoneinfo.ZoneInfo(shop.timezone)).date()


# --- Placements and strategies --------------------------------------------------------------


def _placements_screen(
    request: HtmxHttpRequest, membership: Membership, form: forms.PlacementCreateForm, status: int = 200
) -> HttpResponse:
    shop = membership.shop
    return render_screen(
        request,
        "console/placements/placements.html",
        {
            "form": form,
            "rows": console_selectors.placement_rows(shop),
            "strategies": console_selectors.strategy_rows(shop),
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def placements(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """The placements and strategies of the shop; POST creates a placement (with a new
    strategy from its kind's default, unless an existing one is chosen)."""
    membership = access_shop(request.user, shop_slug, _role(request))
    shop = membership.shop
    strategies = list(selectors.strategies_for_shop(shop))
    if request.method == "GET":
        return _placements_screen(request, membership, forms.PlacementCreateForm(strategies=strategies))
    form = forms.PlacementCreateForm(request.POST, strategies=strategies)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                strategy = form.chosen_strategy() or _strategy_for_new_placement(request, shop, form)
                placement = services.placement_create(
                    shop=shop,
                    actor=_actor(request),
                    fields={
                        "slug": data["slug"],
                        "name": data["name"].strip(),
                        "kind": data["kind"],
                        "default_strategy": strategy,
                    },
                )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Placement {placement.slug} is created. Add it to your pages with the widget.")
            return HttpResponseRedirect(reverse("console:placement", args=[shop.slug, placement.slug]))
    return _placements_screen(request, membership, form, status=400)


def _strategy_for_new_placement(request: HtmxHttpRequest, shop: Shop, form: forms.PlacementCreateForm) -> Strategy:
    data = form.cleaned_data
    name = f"{data['name'].strip()} ({data['slug']})"
    try:
        return services.strategy_create(
            shop=shop, actor=_actor(request), fields={"name": name, "config": DEFAULT_STRATEGIES[data["kind"]]}
        )
    except ValidationError:
        raise ValidationError(
            {"strategy": [f'A strategy named "{name}" exists already: choose it, or another name.']}
        ) from None


@console_view
@require_POST
def placements_defaults(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    created = services.placements_create_defaults(shop=membership.shop, actor=_actor(request))
    if created:
        messages.success(request, f"Created the placements {', '.join(p.slug for p in created)}.")
    else:
        messages.info(request, "The standard placements exist already.")
    return _go(request, "console:placements", membership.shop.slug)


@console_view
@require_http_methods(["GET", "POST"])
def placement_detail(request: HtmxHttpRequest, shop_slug: str, placement_slug: str) -> HttpResponse:
    membership, placement = access_placement(request.user, shop_slug, placement_slug, _role(request))
    shop = membership.shop
    strategies = list(selectors.strategies_for_shop(shop))
    form = forms.PlacementForm(initial=forms.PlacementForm.initial_from(placement), strategies=strategies)
    if request.method == "POST":
        form = forms.PlacementForm(request.POST, strategies=strategies)
        if form.is_valid():
            try:
                placement = services.placement_update(
                    placement=placement, actor=_actor(request), fields=form.service_fields()
                )
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, f"Placement {placement.slug} is saved.")
                return HttpResponseRedirect(reverse("console:placement", args=[shop.slug, placement.slug]))
    return render_screen(
        request,
        "console/placements/placement.html",
        {
            "placement": placement,
            "form": form,
            "strategy": placement.default_strategy,
            "config": placement.default_strategy.strategy.to_dict(),
            "max_weight": max(placement.default_strategy.strategy.weights.values()),
            "promotions": [
                console_selectors.promotion_row(p, timezone.now())
                for p in selectors.promotions_for_shop(shop).filter(all_placements=False, placements=placement)
            ],
            "experiments": list(placement.experiments.order_by("-created_at", "-id")),
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        status=400 if form.is_bound else 200,
    )


def _strategy_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    form: forms.StrategyForm,
    strategy: Strategy | None,
    status: int = 200,
) -> HttpResponse:
    return render_screen(
        request,
        "console/placements/strategy.html",
        {
            "form": form,
            "strategy": strategy,
            "usage": console_selectors.strategy_usage(strategy) if strategy else None,
            "kinds": PlacementKind.choices,
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def strategy_new(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """A new strategy, starting from the recommended mix of a placement kind (``?from=``)."""
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    shop = membership.shop
    categories = category_paths(shop)
    if request.method == "GET":
        kind = request.GET.get("from", "")
        config = DEFAULT_STRATEGIES[kind if kind in DEFAULT_STRATEGIES else PlacementKind.HOME]
        form = forms.StrategyForm(initial=forms.StrategyForm.initial_from("", config), categories=categories)
        return _strategy_screen(request, membership, form, None)
    form = forms.StrategyForm(request.POST, categories=categories)
    if form.is_valid():
        try:
            strategy = services.strategy_create(
                shop=shop,
                actor=_actor(request),
                fields={"name": form.cleaned_data["name"].strip(), "config": form.config},
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f'Strategy "{strategy.name}" is created. Choose it on a placement to serve it.')
            return HttpResponseRedirect(reverse("console:strategy", args=[shop.slug, strategy.pk]))
    return _strategy_screen(request, membership, form, None, status=400)


@console_view
@require_http_methods(["GET", "POST"])
def strategy_detail(request: HtmxHttpRequest, shop_slug: str, strategy_id: int) -> HttpResponse:
    membership, strategy = access_strategy(request.user, shop_slug, strategy_id, _role(request))
    shop = membership.shop
    categories = category_paths(shop)
    if request.method == "GET":
        initial = forms.StrategyForm.initial_from(strategy.name, strategy.config)
        return _strategy_screen(
            request, membership, forms.StrategyForm(initial=initial, categories=categories), strategy
        )
    form = forms.StrategyForm(request.POST, categories=categories)
    if form.is_valid():
        try:
            strategy = services.strategy_update(
                strategy=strategy,
                actor=_actor(request),
                fields={"name": form.cleaned_data["name"].strip(), "config": form.config},
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f'Strategy "{strategy.name}" is saved; serving uses it within seconds.')
            return HttpResponseRedirect(reverse("console:strategy", args=[shop.slug, strategy.pk]))
    return _strategy_screen(request, membership, form, strategy, status=400)


@console_view
@require_POST
def strategy_delete(request: HtmxHttpRequest, shop_slug: str, strategy_id: int) -> HttpResponse:
    membership, strategy = access_strategy(request.user, shop_slug, strategy_id, MERCHANDISER)
    shop = membership.shop
    if request.POST.get("confirmed") != "yes":
        return confirm_dialog(
            request,
            membership,
            title=f'Delete strategy "{strategy.name}"?',
            body="It is gone for good. A strategy that a placement or an experiment variant uses cannot be deleted.",
            action=reverse("console:strategy-delete", args=[shop.slug, strategy.pk]),
            confirm_label="Delete strategy",
            target="#modal",
            cancel_url=reverse("console:strategy", args=[shop.slug, strategy.pk]),
        )
    try:
        services.strategy_delete(strategy=strategy, actor=_actor(request))
    except CampaignsConflict as error:
        messages.error(request, f"Not deleted: {error.message}.")
        return _go(request, "console:strategy", shop.slug, strategy.pk)
    messages.success(request, f'Strategy "{strategy.name}" is deleted.')
    return _go(request, "console:placements", shop.slug)


# --- Promotions ----------------------------------------------------------------------------


@console_view
@require_GET
def promotions(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    form = forms.PromotionFilterForm(request.GET)
    status = form.cleaned_data["status"] if form.is_valid() else ""
    rows = console_selectors.promotion_rows(membership.shop, timezone.now(), status)
    return render_screen(
        request,
        "console/promotions/promotions.html",
        {
            "form": form,
            # Statuses are derived in Python, so the rows are a list, paged like a queryset.
            "page": Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page")),
            "filtered": bool(status),
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        partial="results",
    )


def _promotion_form(shop: Shop, data: QueryDict | None = None, **kwargs: Any) -> forms.PromotionForm:
    return forms.PromotionForm(
        data,
        categories=category_paths(shop),
        placements=list(selectors.placements_for_shop(shop)),
        timezone=shop.timezone,
        **kwargs,
    )


def _promotion_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    form: forms.PromotionForm,
    promotion: Promotion | None,
    status: int = 200,
) -> HttpResponse:
    shop = membership.shop
    now = timezone.now()
    target = form.target if form.is_bound else promotion.target_spec if promotion else None
    return render_screen(
        request,
        "console/promotions/promotion.html",
        {
            "form": form,
            "promotion": promotion,
            "row": console_selectors.promotion_row(promotion, now) if promotion else None,
            "matches": console_selectors.target_matches(shop, target, now) if target else None,
            "target_errors": form.target_errors() if form.is_bound else [],
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def promotion_new(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    shop = membership.shop
    if request.method == "GET":
        return _promotion_screen(request, membership, _promotion_form(shop), None)
    form = _promotion_form(shop, request.POST)
    if form.is_valid():
        try:
            promotion = services.promotion_create(
                shop=shop,
                actor=_actor(request),
                fields=form.service_fields(),
                placements=form.service_placements(),
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f'Promotion "{promotion.name}" is saved as a draft. Publish it to make it live.')
            return HttpResponseRedirect(reverse("console:promotion", args=[shop.slug, promotion.pk]))
    return _promotion_screen(request, membership, form, None, status=400)


@console_view
@require_http_methods(["GET", "POST"])
def promotion_detail(request: HtmxHttpRequest, shop_slug: str, promotion_id: int) -> HttpResponse:
    membership, promotion = access_promotion(request.user, shop_slug, promotion_id, _role(request))
    shop = membership.shop
    if request.method == "GET":
        form = _promotion_form(shop, initial=forms.PromotionForm.initial_from(promotion))
        return _promotion_screen(request, membership, form, promotion)
    form = _promotion_form(shop, request.POST)
    if form.is_valid():
        try:
            promotion = services.promotion_update(
                promotion=promotion,
                actor=_actor(request),
                fields=form.service_fields(),
                placements=form.service_placements(),
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            live = " Serving uses the change within seconds." if promotion.status == Promotion.Status.PUBLISHED else ""
            messages.success(request, f'Promotion "{promotion.name}" is saved.{live}')
            return HttpResponseRedirect(reverse("console:promotion", args=[shop.slug, promotion.pk]))
    return _promotion_screen(request, membership, form, promotion, status=400)


@console_view
@require_GET
def promotion_matches(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """The products a target matches now, on the shop's catalog snapshot: the target
    builder asks for it as the merchandiser types (the same fields as the editor)."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    form = forms.TargetForm(request.GET, categories=category_paths(shop), timezone=shop.timezone)
    asked = form.has_criteria
    matches = None
    if asked and form.is_valid():
        assert form.target is not None
        matches = console_selectors.target_matches(shop, form.target, timezone.now())
    return render_screen(
        request,
        "console/promotions/matches.html",
        {"matches": matches, "target_errors": form.target_errors() if asked else []},
        membership=membership,
        partial="matches",
    )


@console_view
@require_POST
def promotion_publish(request: HtmxHttpRequest, shop_slug: str, promotion_id: int) -> HttpResponse:
    membership, promotion = access_promotion(request.user, shop_slug, promotion_id, MERCHANDISER)
    try:
        promotion = services.promotion_publish(promotion=promotion, actor=_actor(request))
    except CampaignsConflict as error:
        messages.error(request, f"Not published: {error.message}.")
    else:
        when = {
            "live": "it is live now",
            "scheduled": "it goes live on its schedule",
            "ended": "but its schedule has no time left",
        }[promotion.lifecycle(timezone.now())]
        messages.success(request, f'Promotion "{promotion.name}" is published: {when}.')
    return _go(request, "console:promotion", membership.shop.slug, promotion.pk)


@console_view
@require_POST
def promotion_pause(request: HtmxHttpRequest, shop_slug: str, promotion_id: int) -> HttpResponse:
    membership, promotion = access_promotion(request.user, shop_slug, promotion_id, MERCHANDISER)
    shop = membership.shop
    if request.POST.get("confirmed") != "yes":
        return confirm_dialog(
            request,
            membership,
            title=f'Pause "{promotion.name}"?',
            body="Shoppers stop seeing it within seconds. Publish it again to bring it back.",
            action=reverse("console:promotion-pause", args=[shop.slug, promotion.pk]),
            confirm_label="Pause promotion",
            target="#modal",
            cancel_url=reverse("console:promotion", args=[shop.slug, promotion.pk]),
        )
    try:
        services.promotion_pause(promotion=promotion, actor=_actor(request))
    except CampaignsConflict as error:
        messages.error(request, f"Not paused: {error.message}.")
    else:
        messages.success(request, f'Promotion "{promotion.name}" is paused.')
    return _go(request, "console:promotion", shop.slug, promotion.pk)


@console_view
@require_POST
def promotion_delete(request: HtmxHttpRequest, shop_slug: str, promotion_id: int) -> HttpResponse:
    membership, promotion = access_promotion(request.user, shop_slug, promotion_id, MERCHANDISER)
    shop = membership.shop
    if request.POST.get("confirmed") != "yes":
        return confirm_dialog(
            request,
            membership,
            title=f'Delete "{promotion.name}"?',
            body="It stops at once and is gone for good; the audit log keeps what it was.",
            action=reverse("console:promotion-delete", args=[shop.slug, promotion.pk]),
            confirm_label="Delete promotion",
            target="#modal",
            cancel_url=reverse("console:promotion", args=[shop.slug, promotion.pk]),
        )
    services.promotion_delete(promotion=promotion, actor=_actor(request))
    messages.success(request, f'Promotion "{promotion.name}" is deleted.')
    return _go(request, "console:promotions", shop.slug)


# --- Calendar ----------------------------------------------------------------------------


@console_view
@require_GET
def calendar_page(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """A month of local days with what is live on each (``?month=YYYY-MM&show=...``)."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    form = forms.CalendarForm(request.GET)
    today = _local_today(shop)
    show = form.shown()
    month = console_selectors.calendar_month(
        shop,
        form.first_day(today),
        today,
        promotions=show in ("all", "promotions"),
        seasonal=show in ("all", "seasonal"),
    )
    return render_screen(
        request,
        "console/calendar/calendar.html",
        {"form": form, "month": month, "show": show},
        membership=membership,
        partial="calendar",
    )


# --- Seasonal boosts ----------------------------------------------------------------------


@console_view
@require_GET
def seasonal(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    today = _local_today(shop)
    return render_screen(
        request,
        "console/seasonal/seasonal.html",
        {
            "rows": console_selectors.seasonal_rows(shop, timezone.now()),
            "suggestions": list(selectors.seasonal_suggestions_for_shop(shop, "suggested")),
            "month": console_selectors.calendar_month(shop, today, today, promotions=False),
            "show": "seasonal",
            "can_edit": _can_edit(membership),
        },
        membership=membership,
    )


def _boost_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    form: forms.SeasonalBoostForm,
    boost: SeasonalBoost | None,
    status: int = 200,
) -> HttpResponse:
    return render_screen(
        request,
        "console/seasonal/boost.html",
        {"form": form, "boost": boost, "can_edit": _can_edit(membership)},
        membership=membership,
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def seasonal_new(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    shop = membership.shop
    categories = category_paths(shop)
    if request.method == "GET":
        return _boost_screen(request, membership, forms.SeasonalBoostForm(categories=categories), None)
    form = forms.SeasonalBoostForm(request.POST, categories=categories)
    if form.is_valid():
        try:
            boost = services.seasonal_boost_create(shop=shop, actor=_actor(request), fields=form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f'Seasonal boost "{boost.name}" is created.')
            return HttpResponseRedirect(reverse("console:seasonal", args=[shop.slug]))
    return _boost_screen(request, membership, form, None, status=400)


@console_view
@require_http_methods(["GET", "POST"])
def seasonal_boost_detail(request: HtmxHttpRequest, shop_slug: str, boost_id: int) -> HttpResponse:
    membership, boost = access_seasonal_boost(request.user, shop_slug, boost_id, _role(request))
    shop = membership.shop
    categories = category_paths(shop)
    if request.method == "GET":
        form = forms.SeasonalBoostForm(initial=forms.SeasonalBoostForm.initial_from(boost), categories=categories)
        return _boost_screen(request, membership, form, boost)
    form = forms.SeasonalBoostForm(request.POST, categories=categories)
    if form.is_valid():
        try:
            boost = services.seasonal_boost_update(boost=boost, actor=_actor(request), fields=form.service_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f'Seasonal boost "{boost.name}" is saved.')
            return HttpResponseRedirect(reverse("console:seasonal", args=[shop.slug]))
    return _boost_screen(request, membership, form, boost, status=400)


@console_view
@require_POST
def seasonal_boost_delete(request: HtmxHttpRequest, shop_slug: str, boost_id: int) -> HttpResponse:
    membership, boost = access_seasonal_boost(request.user, shop_slug, boost_id, MERCHANDISER)
    shop = membership.shop
    if request.POST.get("confirmed") != "yes":
        return confirm_dialog(
            request,
            membership,
            title=f'Delete seasonal boost "{boost.name}"?',
            body="It stops at once and is gone for good; the audit log keeps what it was.",
            action=reverse("console:seasonal-boost-delete", args=[shop.slug, boost.pk]),
            confirm_label="Delete boost",
            target="#modal",
            cancel_url=reverse("console:seasonal-boost", args=[shop.slug, boost.pk]),
        )
    services.seasonal_boost_delete(boost=boost, actor=_actor(request))
    messages.success(request, f'Seasonal boost "{boost.name}" is deleted.')
    return _go(request, "console:seasonal", shop.slug)


@console_view
@require_POST
def seasonal_suggestion_accept(request: HtmxHttpRequest, shop_slug: str, suggestion_id: int) -> HttpResponse:
    membership, suggestion = access_seasonal_suggestion(request.user, shop_slug, suggestion_id, MERCHANDISER)
    form = forms.SuggestionAcceptForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not accepted: the factor must be above 0 and at most 10.")
    else:
        try:
            boost = services.seasonal_suggestion_accept(
                suggestion=suggestion, actor=_actor(request), factor=form.cleaned_data["factor"]
            )
        except CampaignsConflict as error:
            messages.error(request, f"Not accepted: {error.message}.")
        else:
            messages.success(request, f'Seasonal boost "{boost.name}" is created from the suggestion.')
    return _go(request, "console:seasonal", membership.shop.slug)


@console_view
@require_POST
def seasonal_suggestion_dismiss(request: HtmxHttpRequest, shop_slug: str, suggestion_id: int) -> HttpResponse:
    membership, suggestion = access_seasonal_suggestion(request.user, shop_slug, suggestion_id, MERCHANDISER)
    try:
        services.seasonal_suggestion_dismiss(suggestion=suggestion, actor=_actor(request))
    except CampaignsConflict as error:
        messages.error(request, f"Not dismissed: {error.message}.")
    else:
        messages.success(request, f"The suggestion for {suggestion.category.path} is dismissed.")
    return _go(request, "console:seasonal", membership.shop.slug)


@console_view
@require_POST
def seasonal_measure(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Measure last year's seasonal lift now (the daily task, for this shop), in a worker."""
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    transaction.on_commit(partial(seasonal_suggestions_refresh.delay, membership.shop.pk))
    messages.info(
        request,
        "Measuring last year's seasonal lift. New suggestions show up here when it is done; reload in a minute.",
    )
    return _go(request, "console:seasonal", membership.shop.slug)


# --- Experiments ---------------------------------------------------------------------------


@console_view
@require_GET
def experiments(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, VIEWER)
    return render_screen(
        request,
        "console/experiments/experiments.html",
        {
            "page": paginate(request, selectors.experiments_for_shop(membership.shop)),
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        partial="results",
    )


NEW_VARIANT = {"name": "", "allocation": "", "strategy": "", "promotions_on": "on", "model_version_id": ""}


def _wizard_initial(experiment: Experiment | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if experiment is None:
        variants = [
            {"name": "control", "allocation": 50, "strategy": "", "promotions_on": True},
            {"name": "treatment", "allocation": 50, "strategy": "", "promotions_on": True},
        ]
        return {}, variants
    return (
        {
            "name": experiment.name,
            "placement": experiment.placement.slug,
            "primary_metric": experiment.primary_metric,
            "holdout_percent": experiment.holdout_percent,
        },
        [
            {
                "name": v.name,
                "allocation": v.allocation,
                "strategy": str(v.strategy_id) if v.strategy_id else "",
                "promotions_on": v.promotions_on,
                "model_version_id": v.model_version_id,
            }
            for v in experiment.variants.all()
        ],
    )


def _wizard(request: HtmxHttpRequest, membership: Membership, experiment: Experiment | None) -> HttpResponse:
    """Create (``experiment`` None) or change an experiment: placement, variants with their
    overrides, holdout, metric, and the sample-size estimate beside it."""
    shop = membership.shop
    placement_list = list(selectors.placements_for_shop(shop))
    strategies = list(selectors.strategies_for_shop(shop))
    locked = experiment is not None and experiment.status != Experiment.Status.DRAFT
    kwargs: dict[str, Any] = {"placements": placement_list, "placement_locked": locked}
    variant_kwargs = {"strategies": strategies}
    initial, variant_initial = _wizard_initial(experiment)
    status = 200
    if request.method == "GET" or {"add_variant", "remove_variant"} & set(request.POST):
        if request.method == "POST":  # add or remove a row: show the form again, unchecked
            rows = forms.variant_rows(request.POST)
            if "add_variant" in request.POST and len(rows) < MAX_VARIANTS:
                rows.append(dict(NEW_VARIANT))
            removed = request.POST.get("remove_variant", "")
            if removed.isdigit() and 0 < int(removed) < len(rows) and len(rows) > 2:
                rows.pop(int(removed))
            initial = {**initial, **request.POST.dict()}
            variant_initial = [{**row, "promotions_on": row["promotions_on"] == "on"} for row in rows]
        form = forms.ExperimentForm(initial=initial, **kwargs)
        formset = forms.VariantFormSet(
            initial=variant_initial, prefix=forms.VARIANTS_PREFIX, form_kwargs=variant_kwargs
        )
    else:
        form = forms.ExperimentForm(request.POST, initial=initial, **kwargs)  # initial: a locked placement
        formset = forms.VariantFormSet(request.POST, prefix=forms.VARIANTS_PREFIX, form_kwargs=variant_kwargs)
        if form.is_valid() and formset.is_valid():
            variants = [f.spec(is_control=i == 0) for i, f in enumerate(formset.forms)]
            try:
                if experiment is None:
                    experiment = services.experiment_create(
                        shop=shop, actor=_actor(request), fields=form.service_fields(), variants=variants
                    )
                    messages.success(
                        request, f'Experiment "{experiment.name}" is saved as a draft. Start or schedule it.'
                    )
                else:
                    fields = form.service_fields()
                    if locked:
                        fields.pop("placement")
                    version = experiment.version
                    experiment = services.experiment_update(
                        experiment=experiment, actor=_actor(request), fields=fields, variants=variants
                    )
                    again = (
                        f" The split changed, so version {experiment.version} starts: shoppers are assigned anew."
                        if experiment.version != version
                        else ""
                    )
                    messages.success(request, f'Experiment "{experiment.name}" is saved.{again}')
            except ValidationError as error:
                form.add_service_errors(error)
            except CampaignsConflict as error:
                form.add_error(None, f"{error.message[:1].upper()}{error.message[1:]}.")
            else:
                return _go(request, "console:experiment", shop.slug, experiment.pk)
        status = 400
    return render_screen(
        request,
        "console/experiments/wizard.html",
        {
            "form": form,
            "formset": formset,
            # The estimate's own inputs, kept as typed when a variant is added or removed.
            "plan_form": forms.ExperimentPlanForm(initial=request.POST.dict() if request.method == "POST" else None),
            "experiment": experiment,
            "max_variants": MAX_VARIANTS,
        },
        membership=membership,
        partial="wizard",
        status=status,
    )


@console_view
@require_http_methods(["GET", "POST"])
def experiment_new(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, MERCHANDISER)
    return _wizard(request, membership, None)


@console_view
@require_http_methods(["GET", "POST"])
def experiment_edit(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, MERCHANDISER)
    if experiment.status in (Experiment.Status.STOPPED, Experiment.Status.PROMOTED):
        messages.info(request, f"A {experiment.status} experiment cannot change; create a new one.")
        return _go(request, "console:experiment", membership.shop.slug, experiment.pk)
    return _wizard(request, membership, experiment)


def _experiment_screen(
    request: HtmxHttpRequest,
    membership: Membership,
    experiment: Experiment,
    *,
    schedule_form: forms.ExperimentScheduleForm | None = None,
    start_form: forms.ExperimentStartForm | None = None,
    status: int = 200,
) -> HttpResponse:
    shop = membership.shop
    rest = 100 - experiment.holdout_percent
    response = render_screen(
        request,
        "console/experiments/experiment.html",
        {
            "experiment": experiment,
            "variants": [(v, v.allocation * rest / 100) for v in experiment.variants.all()],
            "versions": list(selectors.experiment_versions(experiment)),
            "schedule_form": schedule_form or forms.ExperimentScheduleForm(timezone=shop.timezone),
            "start_form": start_form or forms.ExperimentStartForm(timezone=shop.timezone),
            "can_edit": _can_edit(membership),
        },
        membership=membership,
        partial="actions",
        status=status,
    )
    if request.htmx and status == 400:  # the actions' forms target the dialog; errors go back to the actions
        response = reswap(retarget(response, "#actions"), "outerHTML")
    return response


@console_view
@require_GET
def experiment_detail(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, VIEWER)
    return _experiment_screen(request, membership, experiment)


def _wall(value: datetime | None, tz: tzinfo) -> str:
    return f"{value.astimezone(tz):%a %-d %b %Y, %H:%M}" if value else ""


@console_view
@require_POST
def experiment_schedule(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, MERCHANDISER)
    shop = membership.shop
    form = forms.ExperimentScheduleForm(request.POST, timezone=shop.timezone)
    if not form.is_valid():
        return _experiment_screen(request, membership, experiment, schedule_form=form, status=400)
    starts_at, stops_at = form.cleaned_data["starts_at"], form.cleaned_data["stops_at"]
    if request.POST.get("confirmed") != "yes":
        until = f" and stops {_wall(stops_at, form.tz)}" if stops_at else ", until you stop it"
        return confirm_dialog(
            request,
            membership,
            title=f'Schedule "{experiment.name}"?',
            body=f"It starts {_wall(starts_at, form.tz)} ({shop.timezone}){until}. Shoppers on "
            f"{experiment.placement.slug} are then split between its variants.",
            action=reverse("console:experiment-schedule", args=[shop.slug, experiment.pk]),
            confirm_label="Schedule experiment",
            target="#modal",
            cancel_url=reverse("console:experiment", args=[shop.slug, experiment.pk]),
            hidden={name: request.POST.get(name, "") for name in ("starts_at", "stops_at")},
        )
    try:
        services.experiment_schedule(
            experiment=experiment, actor=_actor(request), starts_at=starts_at, stops_at=stops_at
        )
    except ValidationError as error:
        form.add_service_errors(error)
        return _experiment_screen(request, membership, experiment, schedule_form=form, status=400)
    except CampaignsConflict as error:
        messages.error(request, f"Not scheduled: {error.message}.")
    else:
        messages.success(request, f'Experiment "{experiment.name}" is scheduled.')
    return _go(request, "console:experiment", shop.slug, experiment.pk)


@console_view
@require_POST
def experiment_start(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, MERCHANDISER)
    shop = membership.shop
    form = forms.ExperimentStartForm(request.POST, timezone=shop.timezone)
    if not form.is_valid():
        return _experiment_screen(request, membership, experiment, start_form=form, status=400)
    stops_at = form.cleaned_data["stops_at"]
    if request.POST.get("confirmed") != "yes":
        until = f" It stops {_wall(stops_at, form.tz)} ({shop.timezone})." if stops_at else ""
        return confirm_dialog(
            request,
            membership,
            title=f'Start "{experiment.name}" now?',
            body=f"Shoppers on {experiment.placement.slug} are split between its variants within seconds.{until}",
            action=reverse("console:experiment-start", args=[shop.slug, experiment.pk]),
            confirm_label="Start experiment",
            target="#modal",
            cancel_url=reverse("console:experiment", args=[shop.slug, experiment.pk]),
            hidden={"stops_at": request.POST.get("stops_at", "")},
        )
    try:
        services.experiment_start(experiment=experiment, actor=_actor(request), stops_at=stops_at)
    except ValidationError as error:
        form.add_service_errors(error)
        return _experiment_screen(request, membership, experiment, start_form=form, status=400)
    except CampaignsConflict as error:
        messages.error(request, f"Not started: {error.message}.")
    else:
        messages.success(request, f'Experiment "{experiment.name}" is running.')
    return _go(request, "console:experiment", shop.slug, experiment.pk)


@console_view
@require_POST
def experiment_stop(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, MERCHANDISER)
    shop = membership.shop
    if request.POST.get("confirmed") != "yes":
        scheduled = experiment.status == Experiment.Status.SCHEDULED
        return confirm_dialog(
            request,
            membership,
            title=f'Stop "{experiment.name}"?',
            body="It goes back to a draft and does not start."
            if scheduled and experiment.starts_at and experiment.starts_at > timezone.now()
            else "Every shopper gets the placement's default again. A stopped experiment cannot run again.",
            action=reverse("console:experiment-stop", args=[shop.slug, experiment.pk]),
            confirm_label="Stop experiment",
            target="#modal",
            cancel_url=reverse("console:experiment", args=[shop.slug, experiment.pk]),
        )
    try:
        experiment = services.experiment_stop(experiment=experiment, actor=_actor(request))
    except CampaignsConflict as error:
        messages.error(request, f"Not stopped: {error.message}.")
    else:
        messages.success(request, f'Experiment "{experiment.name}" is {experiment.status}.')
    return _go(request, "console:experiment", shop.slug, experiment.pk)


@console_view
@require_POST
def experiment_delete(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, MERCHANDISER)
    shop = membership.shop
    if request.POST.get("confirmed") != "yes":
        return confirm_dialog(
            request,
            membership,
            title=f'Delete draft "{experiment.name}"?',
            body="It is gone for good. Only drafts can be deleted; experiments that ran keep their record.",
            action=reverse("console:experiment-delete", args=[shop.slug, experiment.pk]),
            confirm_label="Delete experiment",
            target="#modal",
            cancel_url=reverse("console:experiment", args=[shop.slug, experiment.pk]),
        )
    try:
        services.experiment_delete(experiment=experiment, actor=_actor(request))
    except CampaignsConflict as error:
        messages.error(request, f"Not deleted: {error.message}.")
        return _go(request, "console:experiment", shop.slug, experiment.pk)
    messages.success(request, f'Experiment "{experiment.name}" is deleted.')
    return _go(request, "console:experiments", shop.slug)
