"""Console forms of the catalog pages: filters (GET) and changes (POST)."""

import re
import zoneinfo
from datetime import date
from functools import cache
from typing import Any, cast
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from catalog.console_selectors import AuditFilters, ProductFilters, RejectionFilters
from catalog.models import ApiKey, EventType, Membership, Rejection, UploadJob
from catalog.shop_settings import ShopSettings

UPLOAD_EXTENSIONS = (".csv", ".jsonl", ".ndjson")
MAX_ORIGINS = 20


class ProductFilterForm(forms.Form):
    optional_hint = False

    q = forms.CharField(required=False, max_length=200, label="Search")
    category = forms.ChoiceField(required=False, label="Category")
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Any status"), ("active", "Active"), ("inactive", "Inactive"), ("out_of_stock", "Out of stock")],
    )
    embedding = forms.ChoiceField(
        required=False, choices=[("", "Any embedding"), ("ready", "Embedded"), ("pending", "Embedding pending")]
    )
    cold_start = forms.BooleanField(required=False, label="Cold start only")

    def __init__(self, *args: Any, categories: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["category"]).choices = [
            ("", "All categories"),
            *((p, p) for p in categories),
        ]

    def filters(self) -> ProductFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return ProductFilters(
            query=data.get("q", "").strip(),
            category=data.get("category", ""),
            status=data.get("status", ""),
            embedding=data.get("embedding", ""),
            cold_start=bool(data.get("cold_start")),
        )


class RejectionFilterForm(forms.Form):
    optional_hint = False

    kind = forms.ChoiceField(required=False, choices=[("", "Events and products"), *Rejection.Kind.choices])
    source = forms.ChoiceField(required=False, choices=[("", "API and imports"), *Rejection.Source.choices])
    q = forms.CharField(required=False, max_length=200, label="Record id or reason")

    def filters(self) -> RejectionFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return RejectionFilters(
            kind=data.get("kind", ""), source=data.get("source", ""), query=data.get("q", "").strip()
        )


class AuditFilterForm(forms.Form):
    optional_hint = False

    actor = forms.CharField(required=False, max_length=200, label="Actor")
    action = forms.ChoiceField(required=False, label="Action")
    object_type = forms.ChoiceField(required=False, label="Object type")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, actions: list[str], object_types: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["action"]).choices = [("", "Any action"), *((a, a) for a in actions)]
        cast(forms.ChoiceField, self.fields["object_type"]).choices = [
            ("", "Any object"),
            *((t, t) for t in object_types),
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start: date | None = data.get("date_from")
        end: date | None = data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filters(self) -> AuditFilters:
        data = self.cleaned_data if self.is_valid() else {}
        return AuditFilters(
            actor=data.get("actor", "").strip(),
            action=data.get("action", ""),
            object_type=data.get("object_type", ""),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


def parse_origins(text: str) -> list[str]:
    """Origins, one a line, as ``scheme://host[:port]`` (lower case, no trailing slash)."""
    origins: list[str] = []
    for line in text.splitlines():
        raw = line.strip()
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(f"{raw!r} is not an origin; write it as https://shop.example")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValidationError(f"{raw!r} has more than an origin; drop the path, e.g. https://{parts.netloc}")
        origin = f"{parts.scheme}://{parts.netloc.lower()}"
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_ORIGINS:
        raise ValidationError(f"At most {MAX_ORIGINS} origins per key.")
    return origins


class OriginsField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocapitalize": "off"})

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return parse_origins(super().to_python(value) or "")

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="What the key is for, e.g. 'Storefront widget'.")
    kind = forms.ChoiceField(
        choices=[
            (ApiKey.Kind.PUBLISHABLE, "Publishable (pk_…): browser widget, events"),
            (ApiKey.Kind.SECRET, "Secret (sk_…): your server only"),
        ],
        initial=ApiKey.Kind.PUBLISHABLE,
    )
    allowed_origins = OriginsField(
        required=False,
        label="Allowed origins",
        help_text="One a line, e.g. https://shop.example. Publishable keys only work from these.",
    )


class AllowedOriginsForm(forms.Form):
    allowed_origins = OriginsField(required=False, label="Allowed origins", help_text="One a line.")


class ShopperLookupForm(forms.Form):
    shopper_id = forms.CharField(
        max_length=256,
        label="Shopper id",
        help_text="The id your shop sends as 'shopper'. It is hashed at once and never stored.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def clean_shopper_id(self) -> str:
        value: str = self.cleaned_data["shopper_id"]
        return value.strip()


class ShopperEraseForm(ShopperLookupForm):
    confirmed = forms.BooleanField(required=False)


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


@cache
def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ShopSettingsForm(forms.Form):
    name = forms.CharField(max_length=200)
    timezone = forms.ChoiceField(help_text="Days and hours on the console's charts follow it.")
    currency = forms.CharField(min_length=3, max_length=3, help_text="ISO 4217 code, e.g. EUR.")
    decay_half_life_days = forms.FloatField(
        min_value=0.1, max_value=3650, label="Decay half-life (days)", help_text="How fast past behaviour counts less."
    )
    attribution_window_hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 90,
        label="Attribution window (hours)",
        help_text="A purchase this long after a click counts for the recommendation.",
    )
    retrain_every_hours = forms.IntegerField(
        min_value=1, max_value=24 * 30, label="Retrain every (hours)", help_text="How often models are trained again."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["timezone"]).choices = _timezone_choices()
        for event_type in EventType:
            self.fields[f"weight_{event_type.value}"] = forms.FloatField(
                min_value=0, max_value=1000, label=event_type.label
            )

    @property
    def weight_fields(self) -> list[forms.BoundField]:
        return [self[f"weight_{event_type.value}"] for event_type in EventType]

    @property
    def general_fields(self) -> list[forms.BoundField]:
        return [self["name"], self["timezone"], self["currency"]]

    @property
    def model_fields(self) -> list[forms.BoundField]:
        return [self["decay_half_life_days"], self["attribution_window_hours"], self["retrain_every_hours"]]

    @classmethod
    def initial_from(cls, current: ShopSettings) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": current.name,
            "timezone": current.timezone,
            "currency": current.currency,
            "decay_half_life_days": current.decay_half_life_days,
            "attribution_window_hours": current.attribution_window_hours,
            "retrain_every_hours": current.retrain_every_hours,
        }
        for event_type in EventType:
            initial[f"weight_{event_type.value}"] = current.event_weights.get(event_type.value, 0.0)
        return initial

    def clean_currency(self) -> str:
        value = self.cleaned_data["currency"].strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValidationError("Use a three-letter ISO 4217 code, e.g. EUR.")
        return value

    def to_settings(self) -> ShopSettings:
        data = self.cleaned_data
        return ShopSettings(
            name=data["name"].strip(),
            timezone=data["timezone"],
            currency=data["currency"],
            event_weights={event_type.value: data[f"weight_{event_type.value}"] for event_type in EventType},
            decay_half_life_days=data["decay_half_life_days"],
            attribution_window_hours=data["attribution_window_hours"],
            retrain_every_hours=data["retrain_every_hours"],
        )


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        choices=UploadJob.Kind.choices, widget=forms.RadioSelect, initial=UploadJob.Kind.PRODUCTS, label="File holds"
    )
    file = forms.FileField(
        help_text="CSV with a header row, or JSON Lines (one object a line); the same fields as the API.",
        widget=forms.ClearableFileInput(attrs={"accept": ",".join(UPLOAD_EXTENSIONS)}),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith(UPLOAD_EXTENSIONS):
            raise ValidationError(f"Upload a {', '.join(UPLOAD_EXTENSIONS)} file.")
        if upload.size > settings.CONSOLE_UPLOAD_MAX_BYTES:
            raise ValidationError(f"The file is larger than {settings.CONSOLE_UPLOAD_MAX_BYTES // (1024 * 1024)} MB.")
        if upload.size == 0:
            raise ValidationError("The file is empty.")
        return upload
