"""The analytics page's filter form: date range, granularity, placement, variant, promotion."""

from typing import Any, cast

from django import forms

from analytics.kpis import MetricsFilter
from analytics.models import Period
from analytics.ranges import MetricsRange, RangeError, metrics_range
from catalog.models import Shop

_FIELD_OF = {"from": "date_from", "to": "date_to", "granularity": "granularity"}


class AnalyticsFilterForm(forms.Form):
    optional_hint = False

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    granularity = forms.ChoiceField(required=False, choices=[(Period.DAY, "Days"), (Period.HOUR, "Hours")], label="Per")
    placement = forms.ChoiceField(required=False, label="Placement")
    variant = forms.CharField(required=False, max_length=64, label="Variant")
    promotion = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Promotion")

    def __init__(self, *args: Any, placements: list[str], promotions: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["placement"]).choices = [
            ("", "All placements"),
            *((s, s) for s in placements),
        ]
        cast(forms.ChoiceField, self.fields["promotion"]).choices = [
            ("", "All traffic"),
            *((str(pk), name) for pk, name in promotions),
        ]

    def metrics_filter(self, shop: Shop) -> MetricsFilter:
        """The filter the form describes; defaults (the last 30 days, all traffic) for an
        unbound form or invalid values, whose errors the form then shows."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        granularity = data.get("granularity") or Period.DAY
        try:
            window = metrics_range(shop, data.get("date_from"), data.get("date_to"), granularity)
        except RangeError as error:
            self.add_error(_FIELD_OF.get(error.field), error.message)
            window = metrics_range(shop, None, None, granularity)
        return _filter(window, data)


def _filter(window: MetricsRange, data: dict[str, Any]) -> MetricsFilter:
    return MetricsFilter(
        start=window.start,
        end=window.end,
        granularity=window.granularity,
        placement=data.get("placement") or None,
        variant=(data.get("variant") or "").strip() or None,
        promotion_id=data.get("promotion"),
    )
