"""Console views that show recommendations: the Preview page, the live previews of the
strategy and promotion editors, the product page's lists and a shopper's lists.

Each view: one access function, the selectors of recommender.console_selectors (which
run the serving pipeline; nothing is logged as served), one screen or one of its
partials for htmx. A shopper's id travels in POST bodies only, never in a URL.
"""

from collections.abc import Sequence
from functools import partial
from typing import Any

from django import forms
from django.http import HttpResponse, QueryDict
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns.access import access_promotion, access_strategy
from campaigns.forms import LocalDateTimeField, PromotionForm, ShopForm, StrategyForm
from campaigns.models import Promotion
from campaigns.selectors import placements_for_shop
from campaigns.state import PromotionRule
from campaigns.strategy import MAX_SIZE, StrategyConfig
from catalog.access import access_product, access_shop, console_view
from catalog.console import HtmxHttpRequest, render_screen
from catalog.console_selectors import category_paths
from catalog.forms import ShopperLookupForm
from catalog.models import Membership
from catalog.selectors import shopper_by_external_id
from recommender import console_selectors as selectors

VIEWER = Membership.Role.VIEWER
MAX_SESSION_ITEMS = 20


def refused(request: HtmxHttpRequest) -> int:
    """The status of an answer that shows what is wrong with the input: 400, except to
    htmx, which swaps only 2xx answers (its default responseHandling) - the errors must
    replace the region the person is looking at."""
    return 200 if request.htmx else 400


# --- The Preview page ---------------------------------------------------------------------------


class PreviewForm(ShopForm):
    """What to preview. ``variant`` and ``off`` depend on the placement and the instant,
    so the view checks them against the serving state after the form is valid."""

    optional_hint = False

    placement = forms.ChoiceField(label="Placement")
    shopper_id = forms.CharField(
        required=False,
        max_length=256,
        label="Shopper id",
        help_text="Blank: an anonymous visitor. The id your shop sends as 'shopper'.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    session = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Viewed this visit")
    add_item = forms.CharField(
        required=False,
        max_length=200,
        label="Add a viewed product",
        help_text="Type a SKU or part of a title and pick one.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "list": "preview-products"}),
    )
    at = LocalDateTimeField(required=False, label="As of", help_text="Blank: now.")
    variant = forms.CharField(required=False, max_length=100, label="Experiment variant")
    off = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Switch off")
    limit = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_SIZE, label="Items", help_text="Blank: the strategy's size."
    )

    def __init__(
        self,
        *args: Any,
        placements: Sequence[selectors.PlacementOption],
        session_titles: dict[str, str],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        placement_field = self.fields["placement"]
        assert isinstance(placement_field, forms.ChoiceField)
        placement_field.choices = [(p.slug, f"{p.name} ({p.slug})") for p in placements]
        asked = self.data.getlist("session") if isinstance(self.data, QueryDict) else []
        session_field = self.fields["session"]
        assert isinstance(session_field, forms.MultipleChoiceField)
        session_field.choices = [(sku, f"{session_titles.get(sku, sku)} ({sku})") for sku in dict.fromkeys(asked)]
        off_field = self.fields["off"]
        assert isinstance(off_field, forms.MultipleChoiceField)
        off_field.choices = [(v, v) for v in (self.data.getlist("off") if isinstance(self.data, QueryDict) else [])]

    def clean_off(self) -> list[int]:
        values = self.cleaned_data["off"]
        try:
            return sorted({int(v) for v in values})
        except ValueError:
            raise forms.ValidationError("Promotions to switch off are given by their ids (whole numbers).") from None

    def clean_session(self) -> list[str]:
        session = list(dict.fromkeys(self.cleaned_data["session"]))
        if len(session) > MAX_SESSION_ITEMS:
            raise forms.ValidationError(f"A session of at most {MAX_SESSION_ITEMS} products.")
        return session


def _bound_data(request: HtmxHttpRequest) -> QueryDict | None:
    """POST as sent; a GET with parameters (links to a placement, time or variant) without
    any shopper id, which must not travel in a URL; a bare GET: unbound (the defaults)."""
    if request.method == "POST":
        return request.POST
    if not request.GET:
        return None
    data = request.GET.copy()
    data.pop("shopper_id", None)
    return data


@console_view
@require_http_methods(["GET", "POST"])
def preview(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Pick a placement, a shopper or a pretend session, an instant and a variant; see
    the list with each item's provenance; switch live promotions off to compare."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    state = selectors.serving_state(shop)
    placements = selectors.placement_options(state)
    data = _bound_data(request)
    index = state.snapshot.index_by_sku
    asked = data.getlist("session") if data is not None else []
    titles = {sku: state.snapshot.titles[index[sku]] for sku in asked if sku in index}
    form = PreviewForm(data, placements=placements, session_titles=titles, timezone=shop.timezone)
    context: dict[str, Any] = {"form": form, "placements": placements}
    if not placements:
        return render_screen(request, "console/preview/preview.html", context, membership=membership, partial="preview")
    status = 200
    values: dict[str, Any] = {"placement": placements[0].slug, "at": None, "shopper_id": "", "session": []}
    values |= {"variant": "", "off": [], "limit": None, "add_item": ""}
    if form.is_bound:
        if form.is_valid():
            values = dict(form.cleaned_data)
        else:
            status = refused(request)
    if status == 200:
        status = 200 if _preview_into(context, form, values, shop=shop, state=state) else refused(request)
    return render_screen(
        request, "console/preview/preview.html", context, membership=membership, partial="preview", status=status
    )


def _preview_into(context: dict[str, Any], form: PreviewForm, values: dict[str, Any], *, shop: Any, state: Any) -> bool:
    """Check what depends on the serving state, compute the comparison into ``context``;
    answers False when the form got errors here."""
    placement = values["placement"]
    index = state.snapshot.index_by_sku
    at = values["at"] or timezone.now()
    session = list(values["session"])
    added = values["add_item"].strip()
    if added:
        known, _ = selectors.known_skus(state, [added])
        if not known:
            form.add_error("add_item", f'No product with SKU "{added}". Pick one of the suggestions.')
        elif added not in session:
            session.append(added)
    _, unknown = selectors.known_skus(state, session)
    if unknown:
        form.add_error("session", f"Not in the catalog: {', '.join(unknown)}.")
    experiment = selectors.experiment_running(state, placement, at)
    variant = values["variant"] or None
    if variant and (experiment is None or variant not in experiment.variants):
        where = f'"{experiment.name}" has the variants {", ".join(experiment.variants)}' if experiment else "none runs"
        form.add_error("variant", f"No variant {variant!r} in the experiment of this placement then ({where}).")
    rules = selectors.live_rules(state, placement, at)
    promotions = [r for r in rules if r.kind != "seasonal"]
    live_ids = {r.id for r in promotions}
    off = [i for i in values["off"] if i in live_ids]
    shopper_id = values["shopper_id"].strip() or None
    context.update(
        {
            "at": at,
            "at_given": bool(values["at"]),
            "placement": next(p for p in context["placements"] if p.slug == placement),
            "experiment": experiment,
            "variant": variant,
            "live_promotions": promotions,
            "live_seasonal": [r for r in rules if r.kind == "seasonal"],
            "off": off,
            "session_items": [(sku, state.snapshot.titles[i]) for sku in session if (i := index.get(sku)) is not None],
            "shopper_given": bool(shopper_id),
            "shopper_known": bool(shopper_id and shopper_by_external_id(shop, shopper_id)),
        }
    )
    if form.errors:
        return False
    context["comparison"] = selectors.preview_compare(
        shop=shop,
        placement_slug=placement,
        shopper_id=shopper_id,
        session_items=session,
        at=at,
        variant=variant,
        disabled_promotion_ids=off,
        limit=values["limit"],
    )
    context["session_value"] = session
    return True


@console_view
@require_GET
def preview_products(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Products matching what was typed, as the session builder's suggestions."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    query = (request.GET.get("add_item") or request.GET.get("q") or "")[:200]
    state = selectors.serving_state(membership.shop)
    return render_screen(
        request,
        "console/preview/products.html",
        {"query": query, "options": selectors.product_options(state, query)},
        membership=membership,
        partial="options",
    )


# --- The strategy editor's preview --------------------------------------------------------------


@console_view
@require_GET
def strategy_preview(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """What the strategy as edited serves, next to what the saved one serves. Receives the
    editor's fields (campaigns.forms.StrategyForm) and ``strategy`` (its id, if saved)."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    screen = partial(_fragment, request, membership, "console/preview/strategy.html", strategy=None)
    try:
        strategy_id = _id_param(request, "strategy")
    except ValueError as error:
        return screen(errors=[str(error)], status=refused(request))
    saved = access_strategy(request.user, shop_slug, strategy_id, VIEWER)[1] if strategy_id is not None else None
    weighted = any(name.startswith("source_") and request.GET[name].strip() not in ("", "0") for name in request.GET)
    if saved is not None and "size" not in request.GET:
        edited = saved.strategy  # the link without the form: the saved strategy as it is
    elif not weighted:
        return screen(asked=False, strategy=saved)
    else:
        data = request.GET.copy()
        if not data.get("name", "").strip():  # a strategy not named yet previews all the same
            data["name"] = saved.name if saved else "This strategy"
        form = StrategyForm(data, categories=category_paths(shop))
        if not form.is_valid():
            return screen(errors=_error_lines(form), status=refused(request))
        edited = StrategyConfig.from_dict(form.config)
    placement_slug = None
    if saved is not None:
        placement_slug = next((p.slug for p in placements_for_shop(shop) if p.default_strategy_id == saved.pk), None)
    result = selectors.strategy_preview(
        shop,
        strategy=edited,
        saved=saved.strategy if saved is not None and saved.strategy != edited else None,
        placement_slug=placement_slug,
    )
    return screen(result=result, strategy=saved)


def _id_param(request: HtmxHttpRequest, name: str) -> int | None:
    """The id in query parameter ``name`` (None when absent); ValueError when not a number."""
    value = request.GET.get(name, "").strip()
    if value and not value.isdigit():
        raise ValueError(f"The {name} id is a whole number.")
    return int(value) if value else None


def _error_lines(form: forms.Form) -> list[str]:
    """The form's errors, one line each, named by the field's label."""
    return [f"{form[n].label}: {e}" if n in form.fields else str(e) for n, es in form.errors.items() for e in es]


def _fragment(
    request: HtmxHttpRequest, membership: Membership, template: str, *, status: int = 200, **context: Any
) -> HttpResponse:
    """An editor's preview: the region's fragment for htmx, a page of its own otherwise."""
    context = {"errors": [], "result": None, "asked": True, **context}
    return render_screen(request, template, context, membership=membership, partial="body", status=status)


# --- The promotion editor's preview -------------------------------------------------------------


@console_view
@require_GET
def promotion_preview(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """Per placement the promotion applies to, the slots before and after it, with the
    rules engine's reasons. Receives the editor's fields (campaigns.forms.PromotionForm)
    and ``promotion`` (its id, if saved)."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    screen = partial(_fragment, request, membership, "console/preview/promotion.html")
    try:
        promotion_id = _id_param(request, "promotion")
    except ValueError as error:
        return screen(errors=[str(error)], status=refused(request))
    saved = access_promotion(request.user, shop_slug, promotion_id, VIEWER)[1] if promotion_id is not None else None
    placements = list(placements_for_shop(shop))
    if saved is not None and "action" not in request.GET:
        fields = _saved_fields(saved)  # the link without the form: the saved promotion as it is
        chosen = list(saved.placements.all())
    else:
        data = request.GET.copy()
        if not data.get("name", "").strip():  # a promotion not named yet previews all the same
            data["name"] = saved.name if saved else "This promotion"
        form = PromotionForm(data, categories=category_paths(shop), placements=placements, timezone=shop.timezone)
        if not form.has_criteria:
            return screen(asked=False)
        if not form.is_valid():
            return screen(errors=_error_lines(form), status=refused(request))
        fields = form.service_fields()
        chosen = form.service_placements()
    draft = Promotion(shop=shop, **fields)
    now = timezone.now()
    rule = PromotionRule(
        id=saved.pk if saved is not None else selectors.DRAFT_PROMOTION_ID,
        name=fields["name"],
        action=fields["action"],
        target=draft.target_spec,
        slot=fields["slot"],
        factor=fields["factor"],
        priority=fields["priority"],
        created_at=saved.created_at if saved is not None else now,
        all_placements=fields["all_placements"],
        placement_ids=frozenset(p.pk for p in chosen),
        schedule=draft.schedule,
    )
    # A promotion that starts later is shown at its start; otherwise as of now.
    starts = fields.get("starts_at")
    at = starts if starts is not None and starts > now else now
    result = selectors.promotion_preview(shop, rule=rule, at=at)
    return screen(result=result, at=at)


def _saved_fields(promotion: Promotion) -> dict[str, Any]:
    names = ["name", "target", "action", "slot", "factor", "all_placements", "starts_at", "ends_at"]
    names += ["yearly_from", "yearly_until", "weekdays", "daily_from", "daily_until", "priority"]
    return {name: getattr(promotion, name) for name in names}


# --- The product page's lists and a shopper's lists --------------------------------------------


@console_view
@require_GET
def product_recommendations(request: HtmxHttpRequest, shop_slug: str, sku: str) -> HttpResponse:
    """The product's similar-items, bought-together and also-viewed lists as the models
    serve them, with how the models cover it (the cold-start path)."""
    membership, product = access_product(request.user, shop_slug, sku, VIEWER)
    lists = selectors.product_lists(membership.shop, product.sku)
    return render_screen(
        request,
        "console/recommendations/product.html",
        {"product": product, "lists": lists},
        membership=membership,
        partial="lists",
    )


@console_view
@require_POST
def shopper_recommendations(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """What every placement serves a shopper now. POST: the id stays out of URLs and logs."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    form = ShopperLookupForm(request.POST)
    context: dict[str, Any] = {"form": form, "lists": None, "shopper_id": ""}
    status = 200
    if form.is_valid():
        shopper_id = form.cleaned_data["shopper_id"]
        context["shopper_id"] = shopper_id
        context["known"] = shopper_by_external_id(membership.shop, shopper_id) is not None
        context["lists"] = selectors.shopper_lists(membership.shop, shopper_id)
    else:
        status = refused(request)
    return render_screen(
        request, "console/recommendations/shopper.html", context, membership=membership, partial="lists", status=status
    )
