"""Console forms of the merchandising pages: placements, strategies, promotions (with the
target builder), seasonal boosts and experiments.

The forms turn what a person types into the values the services take; the rules of
what is valid stay where they are (``StrategyConfig.from_dict``, ``Target.from_dict``,
the models' ``clean``): the forms call them and put each problem on the field it is
about, so the page shows it next to that field.
"""

import zoneinfo
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any, cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.http import QueryDict

from campaigns.models import (
    MAX_PROMOTION_FACTOR,
    MAX_SEASONAL_FACTOR,
    MAX_SLOT,
    Experiment,
    Placement,
    PlacementKind,
    Promotion,
    SeasonalBoost,
    Strategy,
)
from campaigns.schedule import parse_month_day
from campaigns.services import MAX_VARIANTS, VariantSpec
from campaigns.strategy import MAX_SIZE, MAX_WEIGHT, SOURCES, StrategyConfig, StrategyError
from campaigns.targets import Target, TargetError

WEEKDAYS = [(str(i), name) for i, name in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))]


# --- Shared pieces ------------------------------------------------------------------------------


def split_values(text: str, *, commas: bool = True) -> list[str]:
    """Values one a line (and, with ``commas``, separated by commas), stripped, without
    blanks or repeats, in the order given."""
    pieces = text.replace(",", "\n").splitlines() if commas else text.splitlines()
    return list(dict.fromkeys(p.strip() for p in pieces if p.strip()))


def month_day(value: str) -> str:
    """A month and day as MM-DD ("" stays ""); a ValidationError says what is wrong."""
    value = value.strip()
    if value:
        try:
            parse_month_day(value)
        except ValueError as error:
            raise ValidationError(str(error)) from None
    return value


class MonthDayField(forms.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 5)
        kwargs.setdefault("widget", forms.TextInput(attrs={"placeholder": "MM-DD", "inputmode": "numeric"}))
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        return month_day(super().clean(value))


class LocalDateTimeField(forms.DateTimeField):
    """A date and time on the shop's wall clock (an ``<input type="datetime-local">``),
    cleaned to an aware instant. The form sets ``tz`` to the shop's zone. A wall time the
    clocks skip or repeat (daylight saving) is refused, as the API refuses it without an
    offset: the page has no way to say which of the two instants is meant."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "60"}, format="%Y-%m-%dT%H:%M")
    default_error_messages = {
        "invalid": "Enter a date and time.",
        "skipped": "The clocks skip %(wall)s in %(zone)s (daylight saving); pick another time.",
        "repeated": "%(wall)s happens twice in %(zone)s (the clocks go back); pick a time outside that hour.",
    }
    tz: tzinfo = UTC

    def to_python(self, value: Any) -> datetime | None:  # type: ignore[override]
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            wall = value
        else:
            try:
                wall = datetime.fromisoformat(str(value).strip())
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid") from None
        if wall.tzinfo is not None:
            return wall
        aware = wall.replace(tzinfo=self.tz)
        params = {"wall": f"{wall:%Y-%m-%d %H:%M}", "zone": str(self.tz)}
        if aware.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) != wall:
            raise ValidationError(self.error_messages["skipped"], code="skipped", params=params)
        if aware.utcoffset() != wall.replace(tzinfo=self.tz, fold=1).utcoffset():
            raise ValidationError(self.error_messages["repeated"], code="repeated", params=params)
        return aware

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(self.tz).replace(tzinfo=None)
        return value


class ServiceForm(forms.Form):
    """A form whose values go to a campaigns service, which may still refuse them."""

    def add_service_errors(self, error: ValidationError, aliases: Mapping[str, str] | None = None) -> None:
        """Put a service's ValidationError on the fields it names (``aliases`` maps a model
        field to the form field that edits it); the rest go on top of the form."""
        details = error.message_dict if hasattr(error, "error_dict") else {NON_FIELD_ERRORS: error.messages}
        for name, messages in details.items():
            field = (aliases or {}).get(name, name)
            for message in messages:
                if field in self.fields:
                    self.add_error(field, _sentence(message))
                elif name == NON_FIELD_ERRORS:
                    self.add_error(None, _sentence(message))
                else:
                    self.add_error(None, f"{_sentence(name.replace('_', ' '))}: {message}")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


class ShopForm(ServiceForm):
    """A form of one shop's page: knows the shop's time zone (for its LocalDateTimeFields)."""

    def __init__(self, *args: Any, timezone: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tz = zoneinfo.ZoneInfo(timezone)
        for field in self.fields.values():
            if isinstance(field, LocalDateTimeField):
                field.tz = self.tz


def _choice_values(values: Sequence[str], known: Sequence[str]) -> list[tuple[str, str]]:
    """Choices of the known values plus any stored value that is no longer known (so that
    saving a form does not silently drop it)."""
    extra = [v for v in values if v not in known]
    return [(v, v) for v in [*known, *extra]]


# --- Placements and strategies ------------------------------------------------------------------

NEW_STRATEGY = ""


class PlacementCreateForm(ServiceForm):
    name = forms.CharField(max_length=200, help_text="What merchandisers call it, e.g. 'Product page'.")
    slug = forms.SlugField(
        max_length=64, help_text="What the widget sends as placement, e.g. pdp. It cannot change later."
    )
    kind = forms.ChoiceField(choices=PlacementKind.choices, initial=PlacementKind.PRODUCT)
    strategy = forms.ChoiceField(
        required=False,
        label="Default strategy",
        help_text="A new strategy starts from the recommended mix for the kind.",
    )

    def __init__(self, *args: Any, strategies: Sequence[Strategy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = {str(s.pk): s for s in strategies}
        cast(forms.ChoiceField, self.fields["strategy"]).choices = [
            (NEW_STRATEGY, "A new strategy for this placement"),
            *((key, s.name) for key, s in self.strategies.items()),
        ]

    def chosen_strategy(self) -> Strategy | None:
        """The existing strategy chosen, or None for a new one."""
        return self.strategies.get(self.cleaned_data["strategy"])


class PlacementForm(ServiceForm):
    name = forms.CharField(max_length=200)
    default_strategy = forms.ChoiceField(
        help_text="What this placement serves when no experiment variant says otherwise."
    )
    promotions_enabled = forms.BooleanField(
        required=False,
        label="Promotions and seasonal boosts apply here",
        help_text="Off: this placement serves its strategy as it is, without merchandising rules.",
    )

    def __init__(self, *args: Any, strategies: Sequence[Strategy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = {str(s.pk): s for s in strategies}
        cast(forms.ChoiceField, self.fields["default_strategy"]).choices = [
            (key, s.name) for key, s in self.strategies.items()
        ]

    @classmethod
    def initial_from(cls, placement: Placement) -> dict[str, Any]:
        return {
            "name": placement.name,
            "default_strategy": str(placement.default_strategy_id),
            "promotions_enabled": placement.promotions_enabled,
        }

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "default_strategy": self.strategies[data["default_strategy"]],
            "promotions_enabled": data["promotions_enabled"],
        }


SOURCE_LABELS = {
    "personal": "Personal",
    "similar": "Similar items",
    "bought_together": "Bought together",
    "also_viewed": "Also viewed",
    "trending": "Trending",
    "new_arrivals": "New arrivals",
    "session": "This session",
}
SOURCE_HELP = {
    "personal": "From the shopper's own history (collaborative model).",
    "similar": "Like the items on the page, by behaviour and text.",
    "bought_together": "Bought in the same orders as the items on the page.",
    "also_viewed": "Viewed in the same sessions as the items on the page.",
    "trending": "Rising in the last days, per category.",
    "new_arrivals": "Recently added to the catalog.",
    "session": "Follows what the shopper does in this visit.",
}
# Where StrategyConfig reports a problem -> the form field that edits it.
STRATEGY_FIELD_OF = {
    **{f"sources.{name}": f"source_{name}" for name in SOURCES},
    "filters.in_stock": "in_stock",
    "filters.exclude_purchased": "exclude_purchased",
    "filters.price_min": "price_min",
    "filters.price_max": "price_max",
    "filters.categories": "categories",
    "diversity.max_per_category": "max_per_category",
    "diversity.mmr_lambda": "mmr_lambda",
    "size": "size",
}


class StrategyForm(ServiceForm):
    """A strategy: a weight per source (blank or 0: not used), filters, diversity, size.
    Validated by StrategyConfig, the one validator of strategies; ``config`` holds the
    result."""

    optional_hint = False  # nearly every field may stay blank; the help texts say what blank means

    name = forms.CharField(max_length=200)
    in_stock = forms.BooleanField(required=False, label="Only products in stock")
    exclude_purchased = forms.BooleanField(required=False, label="Leave out what the shopper already bought")
    price_min = forms.FloatField(required=False, min_value=0, label="Lowest price")
    price_max = forms.FloatField(required=False, min_value=0, label="Highest price")
    categories = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only these categories",
        help_text="Each includes its subcategories. None ticked: every category.",
    )
    max_per_category = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_SIZE,
        label="At most per category",
        help_text="Blank: no cap.",
    )
    mmr_lambda = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=0.0,
        label="Diversity strength (MMR)",
        help_text="0: ranked by score only; 1: as varied as possible.",
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )
    size = forms.IntegerField(
        min_value=1, max_value=MAX_SIZE, initial=10, label="Items served", help_text=f"1 to {MAX_SIZE}."
    )

    def __init__(self, *args: Any, categories: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SOURCES:
            self.fields[f"source_{name}"] = forms.FloatField(
                required=False,
                min_value=0,
                max_value=MAX_WEIGHT,
                label=SOURCE_LABELS[name],
                help_text=SOURCE_HELP[name],
                widget=forms.NumberInput(attrs={"step": "0.1", "placeholder": "off"}),
            )
        chosen = self.data.getlist("categories") if isinstance(self.data, QueryDict) else []
        stored = list(self.initial.get("categories", []))
        cast(forms.MultipleChoiceField, self.fields["categories"]).choices = _choice_values(
            [*stored, *chosen], categories
        )
        self.config: dict[str, Any] = {}

    @property
    def source_fields(self) -> list[forms.BoundField]:
        return [self[f"source_{name}"] for name in SOURCES]

    @classmethod
    def initial_from(cls, name: str, config: Mapping[str, Any]) -> dict[str, Any]:
        strategy = StrategyConfig.from_dict(config)
        initial: dict[str, Any] = {
            "name": name,
            "in_stock": strategy.filters.in_stock,
            "exclude_purchased": strategy.filters.exclude_purchased,
            "price_min": strategy.filters.price_min,
            "price_max": strategy.filters.price_max,
            "categories": list(strategy.filters.categories),
            "max_per_category": strategy.diversity.max_per_category,
            "mmr_lambda": strategy.diversity.mmr_lambda,
            "size": strategy.size,
        }
        initial.update({f"source_{source}": weight for source, weight in strategy.sources})
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if any(name in self.errors for name in self.fields if name != "name"):
            return data  # field errors first; the whole config is checked once they are fixed
        config = {
            "sources": {name: data[f"source_{name}"] for name in SOURCES if data.get(f"source_{name}")},
            "filters": {
                "in_stock": data["in_stock"],
                "exclude_purchased": data["exclude_purchased"],
                "price_min": data["price_min"],
                "price_max": data["price_max"],
                "categories": data["categories"],
            },
            "diversity": {"max_per_category": data["max_per_category"], "mmr_lambda": data["mmr_lambda"]},
            "size": data["size"],
        }
        try:
            self.config = StrategyConfig.from_dict(config).to_dict()
        except StrategyError as error:
            for path, reason in error.problems.items():
                if path == "sources":
                    self.add_error(None, "Give at least one source a weight above 0.")
                else:
                    self.add_error(STRATEGY_FIELD_OF.get(path), reason.capitalize())
        return data


# --- Promotions: the target builder and the editor ----------------------------------------------

TARGET_FIELDS = ("skus", "categories", "brands", "tags", "attributes", "price_min", "price_max", "new_within_days")


def _attributes_text(attributes: Mapping[str, Sequence[str]]) -> str:
    return "\n".join(f"{name}: {', '.join(values)}" for name, values in attributes.items())


def parse_attributes(text: str) -> dict[str, list[str]]:
    """``color: red, blue`` (or ``color = red``), one attribute a line."""
    found: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cut = min((i for i in (line.find(":"), line.find("=")) if i > 0), default=-1)
        name, values = (line[:cut].strip(), split_values(line[cut + 1 :])) if cut > 0 else ("", [])
        if not name or not values:
            raise ValidationError(f"Line {number}: write an attribute as name: value, value (e.g. color: red, blue).")
        found.setdefault(name, [])
        found[name] += [v for v in values if v not in found[name]]
    return found


class TargetForm(ShopForm):
    """What a promotion applies to: the criteria that are filled in must all hold (and
    within one, any value may match). ``target`` holds the validated Target."""

    optional_hint = False  # every criterion is optional; at least one is needed

    skus = forms.CharField(
        required=False,
        label="SKUs",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocapitalize": "off"}),
        help_text="One a line, or separated by commas.",
    )
    categories = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each includes its subcategories.",
    )
    brands = forms.CharField(required=False, max_length=5000, help_text="Separated by commas; any case.")
    tags = forms.CharField(required=False, max_length=5000, help_text="Separated by commas; any case.")
    attributes = forms.CharField(
        required=False,
        label="Attribute values",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="One attribute a line: color: red, blue",
    )
    price_min = forms.FloatField(required=False, min_value=0, label="Price from")
    price_max = forms.FloatField(required=False, min_value=0, label="Price up to", help_text="Included.")
    new_within_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=365,
        label="New arrivals within (days)",
        help_text="Added to the catalog at most this many days ago.",
    )

    def __init__(self, *args: Any, categories: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = self.data.getlist("categories") if isinstance(self.data, QueryDict) else []
        stored = list(self.initial.get("categories", []))
        cast(forms.MultipleChoiceField, self.fields["categories"]).choices = _choice_values(
            [*stored, *chosen], categories
        )
        self.target: Target | None = None

    @staticmethod
    def target_initial(target: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "skus": "\n".join(target.get("skus", [])),
            "categories": list(target.get("categories", [])),
            "brands": ", ".join(target.get("brands", [])),
            "tags": ", ".join(target.get("tags", [])),
            "attributes": _attributes_text(target.get("attributes", {})),
            "price_min": target.get("price_min"),
            "price_max": target.get("price_max"),
            "new_within_days": target.get("new_within_days"),
        }

    def clean_attributes(self) -> dict[str, list[str]]:
        return parse_attributes(self.cleaned_data["attributes"])

    def target_errors(self) -> list[str]:
        """What is wrong with the target (bound forms only), one line per problem."""
        problems = [f"{self[name].label}: {error}" for name in TARGET_FIELDS for error in self.errors.get(name, [])]
        return problems + [str(error) for error in self.non_field_errors()]

    @property
    def has_criteria(self) -> bool:
        """Whether any target criterion was filled in (bound forms only)."""
        return any(self.data.get(name) for name in TARGET_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if any(name in self.errors for name in TARGET_FIELDS):
            return data
        raw = {
            "skus": split_values(data["skus"]),
            "categories": data["categories"],
            "brands": split_values(data["brands"]),
            "tags": split_values(data["tags"]),
            "attributes": data["attributes"],
            "price_min": data["price_min"],
            "price_max": data["price_max"],
            "new_within_days": data["new_within_days"],
        }
        try:
            self.target = Target.from_dict(raw)
        except TargetError as error:
            for path, reason in error.problems.items():
                if path == "":
                    self.add_error(
                        None,
                        "Choose what to target: SKUs, categories, brands, tags, attribute values, a price range "
                        "or new arrivals.",
                    )
                else:
                    self.add_error(path.split(".")[0] if path.split(".")[0] in self.fields else None, reason)
        return data


ACTION_LABELS = [
    (Promotion.Action.PIN, "Pin to a slot"),
    (Promotion.Action.BOOST, "Boost"),
    (Promotion.Action.BURY, "Bury (show last)"),
    (Promotion.Action.EXCLUDE, "Exclude"),
    (Promotion.Action.RESTRICT, "Restrict to these products"),
]
ALL, SOME = "all", "some"


class PromotionForm(TargetForm):
    name = forms.CharField(max_length=200)
    action = forms.ChoiceField(
        choices=ACTION_LABELS,
        widget=forms.RadioSelect,
        initial=Promotion.Action.BOOST,
        label="What to do with the matching products",
    )
    slot = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_SLOT, label="Slot", help_text="1 is the first item served."
    )
    factor = forms.FloatField(
        required=False,
        min_value=0,
        max_value=MAX_PROMOTION_FACTOR,
        label="Boost factor",
        help_text="Multiplies the score: 1.5 lifts matching products by half.",
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )
    scope = forms.ChoiceField(
        choices=[(ALL, "All placements"), (SOME, "Only some placements")],
        widget=forms.RadioSelect,
        initial=ALL,
        label="On which placements",
    )
    placements = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Placements")
    starts_at = LocalDateTimeField(required=False, label="Starts", help_text="Blank: as soon as it is published.")
    ends_at = LocalDateTimeField(required=False, label="Ends", help_text="Blank: no end.")
    yearly_from = MonthDayField(label="Every year from", help_text="MM-DD, e.g. 11-20")
    yearly_until = MonthDayField(label="Every year until", help_text="MM-DD, included; may cross the new year")
    weekdays = forms.MultipleChoiceField(
        required=False,
        choices=WEEKDAYS,
        widget=forms.CheckboxSelectMultiple,
        label="On these weekdays",
        help_text="None ticked: every day.",
    )
    daily_from = forms.TimeField(
        required=False, label="Daily from", widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    daily_until = forms.TimeField(
        required=False,
        label="Daily until",
        help_text="Before the start: runs overnight.",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    priority = forms.IntegerField(
        min_value=-1000,
        max_value=1000,
        initial=0,
        help_text="Higher wins when promotions conflict; then the older one.",
    )

    def __init__(self, *args: Any, categories: Sequence[str], placements: Sequence[Placement], **kwargs: Any) -> None:
        super().__init__(*args, categories=categories, **kwargs)
        self.placement_by_slug = {p.slug: p for p in placements}
        cast(forms.MultipleChoiceField, self.fields["placements"]).choices = [
            (p.slug, f"{p.name} ({p.slug})") for p in placements
        ]

    @classmethod
    def initial_from(cls, promotion: Promotion) -> dict[str, Any]:
        return {
            **cls.target_initial(promotion.target),
            "name": promotion.name,
            "action": promotion.action,
            "slot": promotion.slot,
            "factor": promotion.factor,
            "scope": ALL if promotion.all_placements else SOME,
            "placements": [p.slug for p in promotion.placements.all()],
            "starts_at": promotion.starts_at,
            "ends_at": promotion.ends_at,
            "yearly_from": promotion.yearly_from,
            "yearly_until": promotion.yearly_until,
            "weekdays": [str(d) for d in promotion.weekdays],
            "daily_from": promotion.daily_from,
            "daily_until": promotion.daily_until,
            "priority": promotion.priority,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action = data.get("action")
        if action == Promotion.Action.PIN and data.get("slot") is None:
            self.add_error("slot", f"A pin needs a slot from 1 to {MAX_SLOT}.")
        if action == Promotion.Action.BOOST:
            factor = data.get("factor")
            if factor is None and "factor" not in self.errors:
                self.add_error("factor", "A boost needs a factor, e.g. 1.5.")
            elif factor is not None and factor <= 0:
                self.add_error("factor", f"A boost factor is above 0 and at most {MAX_PROMOTION_FACTOR:g}.")
        if data.get("scope") == SOME and not data.get("placements"):
            self.add_error("placements", "Choose at least one placement, or all placements.")
        if bool(data.get("yearly_from")) != bool(data.get("yearly_until")):
            self.add_error("yearly_until", "A yearly window needs both days.")
        if (data.get("daily_from") is None) != (data.get("daily_until") is None):
            self.add_error("daily_until", "Daily hours need both times.")
        return data

    def service_fields(self) -> dict[str, Any]:
        """The ``fields`` argument of promotion_create / promotion_update."""
        data = self.cleaned_data
        assert self.target is not None
        action = data["action"]
        return {
            "name": data["name"].strip(),
            "target": self.target.to_dict(),
            "action": action,
            "slot": data["slot"] if action == Promotion.Action.PIN else None,
            "factor": data["factor"] if action == Promotion.Action.BOOST else None,
            "all_placements": data["scope"] == ALL,
            "starts_at": data["starts_at"],
            "ends_at": data["ends_at"],
            "yearly_from": data["yearly_from"],
            "yearly_until": data["yearly_until"],
            "weekdays": sorted(int(d) for d in data["weekdays"]),
            "daily_from": data["daily_from"],
            "daily_until": data["daily_until"],
            "priority": data["priority"],
        }

    def service_placements(self) -> list[Placement]:
        if self.cleaned_data["scope"] == ALL:
            return []
        return [self.placement_by_slug[slug] for slug in self.cleaned_data["placements"]]


class PromotionFilterForm(forms.Form):
    optional_hint = False

    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), *((s, s.capitalize()) for s in ("draft", "scheduled", "live", "paused", "ended"))],
    )


# --- Seasonal boosts -------------------------------------------------------------------------------


class SeasonalBoostForm(ServiceForm):
    optional_hint = False  # which window fields are needed depends on the recurrence; errors say so
    name = forms.CharField(max_length=200)
    recurrence = forms.ChoiceField(
        choices=[(SeasonalBoost.Recurrence.YEARLY, "Every year"), (SeasonalBoost.Recurrence.ONCE, "Once")],
        widget=forms.RadioSelect,
        initial=SeasonalBoost.Recurrence.YEARLY,
        label="Window",
    )
    yearly_from = MonthDayField(label="Every year from", help_text="MM-DD, e.g. 11-20")
    yearly_until = MonthDayField(label="Every year until", help_text="MM-DD, included; may cross the new year")
    first_day = forms.DateField(required=False, label="First day", widget=forms.DateInput(attrs={"type": "date"}))
    last_day = forms.DateField(
        required=False, label="Last day", help_text="Included.", widget=forms.DateInput(attrs={"type": "date"})
    )
    categories = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Each includes its subcategories."
    )
    tags = forms.CharField(required=False, max_length=5000, help_text="Separated by commas.")
    factor = forms.FloatField(
        min_value=0,
        max_value=MAX_SEASONAL_FACTOR,
        label="Boost factor",
        help_text=f"Multiplies the score at full strength, above 0 and at most {MAX_SEASONAL_FACTOR:g}.",
        widget=forms.NumberInput(attrs={"step": "0.05"}),
    )
    ramp_up_days = forms.IntegerField(
        min_value=0, max_value=90, initial=0, label="Ramp up (days)", help_text="From x1 to the factor."
    )
    ramp_down_days = forms.IntegerField(
        min_value=0, max_value=90, initial=0, label="Ramp down (days)", help_text="Back to x1 by the last day."
    )
    active = forms.BooleanField(required=False, initial=True, label="Switched on")

    def __init__(self, *args: Any, categories: Sequence[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = self.data.getlist("categories") if isinstance(self.data, QueryDict) else []
        stored = list(self.initial.get("categories", []))
        cast(forms.MultipleChoiceField, self.fields["categories"]).choices = _choice_values(
            [*stored, *chosen], categories
        )

    @classmethod
    def initial_from(cls, boost: SeasonalBoost) -> dict[str, Any]:
        return {
            "name": boost.name,
            "recurrence": boost.recurrence,
            "yearly_from": boost.yearly_from,
            "yearly_until": boost.yearly_until,
            "first_day": boost.first_day,
            "last_day": boost.last_day,
            "categories": list(boost.categories),
            "tags": ", ".join(boost.tags),
            "factor": boost.factor,
            "ramp_up_days": boost.ramp_up_days,
            "ramp_down_days": boost.ramp_down_days,
            "active": boost.active,
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("factor") is not None and data["factor"] <= 0:
            self.add_error("factor", f"The factor is above 0 and at most {MAX_SEASONAL_FACTOR:g}.")
        if data.get("recurrence") == SeasonalBoost.Recurrence.YEARLY:
            for name in ("yearly_from", "yearly_until"):
                if name not in self.errors and not data.get(name):
                    self.add_error(name, "A yearly window needs both days (MM-DD).")
        elif data.get("recurrence") == SeasonalBoost.Recurrence.ONCE:
            for name in ("first_day", "last_day"):
                if name not in self.errors and data.get(name) is None:
                    self.add_error(name, "A one-off window needs its first and last day.")
        if not self.errors and not data.get("categories") and not split_values(data.get("tags", "")):
            self.add_error("categories", "Choose at least one category or tag.")
        return data

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        yearly = data["recurrence"] == SeasonalBoost.Recurrence.YEARLY
        # The fields of the other kind of window are dropped: switching from yearly to
        # once must not leave a yearly window behind.
        return {
            "name": data["name"].strip(),
            "recurrence": data["recurrence"],
            "yearly_from": data["yearly_from"] if yearly else "",
            "yearly_until": data["yearly_until"] if yearly else "",
            "first_day": None if yearly else data["first_day"],
            "last_day": None if yearly else data["last_day"],
            "categories": data["categories"],
            "tags": split_values(data["tags"]),
            "factor": data["factor"],
            "ramp_up_days": data["ramp_up_days"],
            "ramp_down_days": data["ramp_down_days"],
            "active": data["active"],
        }


class SuggestionAcceptForm(forms.Form):
    factor = forms.FloatField(required=False, min_value=0.01, max_value=MAX_SEASONAL_FACTOR)


# --- Experiments --------------------------------------------------------------------------------

DEFAULT_STRATEGY = ""
VARIANTS_PREFIX = "variants"


class VariantForm(forms.Form):
    optional_hint = False  # blank overrides mean "as the placement does": said by the placeholders
    name = forms.SlugField(max_length=64, widget=forms.TextInput(attrs={"spellcheck": "false"}))
    allocation = forms.IntegerField(min_value=1, max_value=100, label="Share (%)")
    strategy = forms.ChoiceField(required=False)
    promotions_on = forms.BooleanField(required=False, initial=True, label="Promotions and boosts")
    model_version_id = forms.IntegerField(
        required=False, min_value=1, label="Model version", widget=forms.NumberInput(attrs={"placeholder": "active"})
    )

    def __init__(self, *args: Any, strategies: Sequence[Strategy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strategies = {str(s.pk): s for s in strategies}
        cast(forms.ChoiceField, self.fields["strategy"]).choices = [
            (DEFAULT_STRATEGY, "Placement's default"),
            *((key, s.name) for key, s in self.strategies.items()),
        ]

    def spec(self, *, is_control: bool) -> VariantSpec:
        data = self.cleaned_data
        return VariantSpec(
            name=data["name"],
            allocation=data["allocation"],
            is_control=is_control,
            strategy=self.strategies.get(data["strategy"]),
            promotions_on=data["promotions_on"],
            model_version_id=data["model_version_id"],
        )


class BaseVariantFormSet(forms.BaseFormSet):  # type: ignore[type-arg]
    def clean(self) -> None:
        if any(self.errors):
            return
        names = [f.cleaned_data["name"] for f in self.forms]
        if len(set(names)) != len(names):
            raise ValidationError("Give every variant its own name.")
        total = sum(f.cleaned_data["allocation"] for f in self.forms)
        if total != 100:
            raise ValidationError(f"The variants' shares add up to {total}%; they must add up to 100%.")


VariantFormSet = forms.formset_factory(
    VariantForm,
    formset=BaseVariantFormSet,
    extra=0,
    min_num=2,
    max_num=MAX_VARIANTS,
    validate_min=True,
    validate_max=True,
)


def variant_rows(data: QueryDict | None) -> list[dict[str, str]]:
    """The variant rows of a posted wizard, as field name -> value (without the prefix)."""
    if data is None:
        return []
    try:
        total = int(data.get(f"{VARIANTS_PREFIX}-TOTAL_FORMS", "0"))
    except ValueError:
        return []
    names = ("name", "allocation", "strategy", "promotions_on", "model_version_id")
    return [
        {name: data.get(f"{VARIANTS_PREFIX}-{i}-{name}", "") for name in names}
        for i in range(min(max(total, 0), MAX_VARIANTS))
    ]


def allocations_of(data: QueryDict) -> list[int] | None:
    """The variants' shares as posted by the wizard (for the live estimate), or None when
    one is not a whole number from 1 to 100."""
    shares = []
    for row in variant_rows(data):
        try:
            share = int(row["allocation"])
        except ValueError:
            return None
        if not 1 <= share <= 100:
            return None
        shares.append(share)
    return shares


METRIC_CHOICES = [
    (Experiment.Metric.CTR.value, "Click-through rate"),
    (Experiment.Metric.ADD_TO_CART_RATE.value, "Add-to-cart rate"),
    (Experiment.Metric.CONVERSION_RATE.value, "Conversion rate"),
    (Experiment.Metric.REVENUE_PER_UNIT.value, "Revenue per shopper"),
]
METRIC_LABELS = dict(METRIC_CHOICES)


class ExperimentForm(ServiceForm):
    name = forms.CharField(max_length=200)
    placement = forms.ChoiceField(help_text="One experiment at a time runs on a placement.")
    primary_metric = forms.ChoiceField(
        choices=METRIC_CHOICES,
        initial=Experiment.Metric.CONVERSION_RATE,
        help_text="The one number that decides the winner.",
    )
    holdout_percent = forms.IntegerField(
        min_value=0,
        max_value=50,
        initial=0,
        label="Holdout (%)",
        help_text="Shoppers kept out of the experiment: they get the placement as it is, to measure the whole "
        "experiment against.",
    )

    def __init__(
        self, *args: Any, placements: Sequence[Placement], placement_locked: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.placements = {p.slug: p for p in placements}
        field = cast(forms.ChoiceField, self.fields["placement"])
        field.choices = [(p.slug, f"{p.name} ({p.slug})") for p in placements]
        if placement_locked:
            field.disabled = True
            field.help_text = "Only a draft can move to another placement."

    def service_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"].strip(),
            "placement": self.placements[data["placement"]],
            "holdout_percent": data["holdout_percent"],
            "primary_metric": data["primary_metric"],
        }


class ExperimentScheduleForm(ShopForm):
    starts_at = LocalDateTimeField(label="Starts")
    stops_at = LocalDateTimeField(required=False, label="Stops", help_text="Blank: runs until you stop it.")


class ExperimentStartForm(ShopForm):
    stops_at = LocalDateTimeField(required=False, label="Stops", help_text="Blank: runs until you stop it.")


# Typical rates of e-commerce recommendation placements, used for the sample-size
# estimate while the placement's own baseline is not entered (percent).
TYPICAL_BASELINE = {
    Experiment.Metric.CTR.value: 5.0,
    Experiment.Metric.ADD_TO_CART_RATE.value: 8.0,
    Experiment.Metric.CONVERSION_RATE.value: 2.5,
}


class ExperimentPlanForm(forms.Form):
    """Inputs of the sample-size estimate. In the wizard, the metric, the holdout and the
    variants' shares come from the experiment's own fields (same names); on the
    estimate's page of its own, from ``primary_metric``, ``holdout_percent`` and
    ``variants`` (an equal split)."""

    optional_hint = False  # every input has a default, said in its help text

    primary_metric = forms.ChoiceField(
        choices=METRIC_CHOICES,
        initial=Experiment.Metric.CONVERSION_RATE,
    )
    holdout_percent = forms.IntegerField(min_value=0, max_value=50, initial=0, label="Holdout (%)")
    variants = forms.IntegerField(
        required=False, min_value=2, max_value=MAX_VARIANTS, initial=2, help_text="Split equally."
    )
    baseline_rate = forms.FloatField(
        required=False,
        min_value=0.01,
        max_value=99.99,
        label="Baseline rate (%)",
        help_text="The placement's rate of the metric today. Blank: a typical one (click-through 5%, "
        "add to cart 8%, conversion 2.5%).",
        widget=forms.NumberInput(attrs={"step": "0.1"}),
    )
    minimum_effect = forms.FloatField(
        required=False,
        min_value=0.1,
        max_value=1000,
        initial=10,
        label="Smallest lift worth finding (%)",
        help_text="Relative: 10 means 2.5% becomes 2.75%.",
    )
    weekly_units = forms.IntegerField(
        required=False, min_value=1, label="Shoppers a week", help_text="Who see this placement; for the duration."
    )
    weeks = forms.IntegerField(required=False, min_value=1, max_value=52, initial=2, label="Planned weeks")
    baseline_mean = forms.FloatField(
        required=False,
        min_value=0.01,
        label="Revenue per shopper",
        help_text="Average over a recent month (revenue per shopper only).",
    )
    baseline_sd = forms.FloatField(required=False, min_value=0.01, label="Its standard deviation")

    @property
    def planning_fields(self) -> list[forms.BoundField]:
        """The inputs the wizard shows (it has the metric, holdout and variants itself)."""
        names = ("baseline_rate", "minimum_effect", "weekly_units", "weeks", "baseline_mean", "baseline_sd")
        return [self[name] for name in names]


class CalendarForm(forms.Form):
    """``?month=2026-12&show=seasonal``: which month, and what to show in it."""

    SHOW = [("all", "Everything"), ("promotions", "Promotions"), ("seasonal", "Seasonal boosts")]

    month = forms.CharField(required=False, max_length=7)
    show = forms.ChoiceField(required=False, choices=SHOW)

    def first_day(self, today: date) -> date:
        """The first day of the month asked for (this month when none or not valid)."""
        text = self.cleaned_data.get("month", "") if self.is_valid() else ""
        try:
            return datetime.strptime(text, "%Y-%m").date()
        except ValueError:
            return today.replace(day=1)

    def shown(self) -> str:
        return (self.cleaned_data.get("show") if self.is_valid() else "") or "all"
