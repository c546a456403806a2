"""Forms of the console's Models page: train now, activate, roll back, and the shop's
learning settings (event weights and decay half-life)."""

import dataclasses
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from catalog.forms import ShopSettingsForm
from catalog.models import EventType, Shop
from catalog.shop_settings import ShopSettings, shop_settings_of
from recommender.kinds import KINDS

ALL_KINDS = ""
RUN_IDS_MAX = len(KINDS)


def _kind_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in KINDS]


class TrainForm(forms.Form):
    kind = forms.ChoiceField(required=False, label="Model", help_text="Every kind the shop can train, or one.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [(ALL_KINDS, "All models"), *_kind_choices()]  # type: ignore[attr-defined]

    def kinds(self) -> list[str] | None:
        """The kinds to train; None: every kind the shop can train."""
        kind = self.cleaned_data["kind"]
        return [kind] if kind else None


class ActivateForm(forms.Form):
    version = forms.IntegerField(min_value=1)


class RollbackForm(forms.Form):
    kind = forms.ChoiceField()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = _kind_choices()  # type: ignore[attr-defined]


def run_ids_from_query(value: str) -> list[int]:
    """The run ids of ``?runs=1,2,3``: at most one per kind; ValidationError when malformed."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if len(parts) > RUN_IDS_MAX or not all(part.isdigit() and len(part) <= 18 for part in parts):
        raise ValidationError(f"runs must be at most {RUN_IDS_MAX} comma-separated run ids")
    return [int(part) for part in parts]


class LearningSettingsForm(ShopSettingsForm):
    """The part of the shop's settings that shapes what models learn: a weight per event
    type and the decay half-life (the shop settings form less its other fields). Saved
    through catalog's shop settings service, so the shop's own validation and the audit
    log apply."""

    LEARNING_FIELDS = ("decay_half_life_days",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        weights = {f"weight_{event_type.value}" for event_type in EventType}
        for name in list(self.fields):
            if name not in weights and name not in self.LEARNING_FIELDS:
                del self.fields[name]
        self.fields["decay_half_life_days"].help_text = "An event this old counts half as much as one from today."

    @classmethod
    def initial_for(cls, shop: Shop) -> dict[str, Any]:
        return cls.initial_from(shop_settings_of(shop))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        weights = [data.get(f"weight_{event_type.value}") for event_type in EventType]
        if all(weight is not None for weight in weights) and not any(weights):
            raise ValidationError("At least one event type needs a weight above 0, or no model can learn anything.")
        return data

    def apply_to(self, current: ShopSettings) -> ShopSettings:
        """``current`` with this form's weights and half-life."""
        data = self.cleaned_data
        return dataclasses.replace(
            current,
            event_weights={event_type.value: data[f"weight_{event_type.value}"] for event_type in EventType},
            decay_half_life_days=data["decay_half_life_days"],
        )
