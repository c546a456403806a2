"""Template tags of the console: form fields with accessible errors, the shop switcher,
navigation state, role checks and server-side SVG charts. ``{% load console %}``."""

import json
from collections.abc import Sequence
from typing import Any

from django import forms, template
from django.utils.safestring import SafeString, mark_safe

from catalog.access import role_at_least as _role_at_least
from catalog.selectors import memberships_for_user
from recsite import charts

register = template.Library()


@register.inclusion_tag("console/components/field.html")
def field(bound_field: forms.BoundField, label_hidden: bool = False) -> dict[str, Any]:
    """A labelled form field; help text and errors are linked with aria-describedby."""
    described_by = []
    if bound_field.help_text:
        described_by.append(f"{bound_field.auto_id}_helptext")
    if bound_field.errors:
        described_by.append(f"{bound_field.auto_id}_error")
    attrs: dict[str, Any] = {}
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    if bound_field.errors:
        attrs["aria-invalid"] = "true"
    widget = bound_field.field.widget
    kind = (
        "checkbox"
        if isinstance(widget, forms.CheckboxInput)
        else "choices"
        if isinstance(widget, forms.RadioSelect)
        else "input"
    )
    return {
        "field": bound_field,
        "widget": bound_field.as_widget(attrs=attrs),
        "kind": kind,
        "label_hidden": label_hidden,
        # Filter forms (all fields optional) leave out the "optional" hint.
        "optional_hint": getattr(bound_field.form, "optional_hint", True),
    }


@register.inclusion_tag("console/components/shop_switcher.html", takes_context=True)
def shop_switcher(context: template.Context) -> dict[str, Any]:
    request = context["request"]
    return {"memberships": list(memberships_for_user(request.user.pk)), "current": context.get("shop")}


@register.simple_tag(takes_context=True)
def nav_current(context: template.Context, url_names: str) -> SafeString:
    """``aria-current="page"`` when the current URL's name is one of the comma-separated names."""
    match = getattr(context["request"], "resolver_match", None)
    if match is not None and match.url_name in {name.strip() for name in url_names.split(",")}:
        return mark_safe(' aria-current="page"')
    return mark_safe("")


@register.filter
def role_at_least(role: str, needed: str) -> bool:
    return bool(role) and _role_at_least(role, needed)


@register.filter
def get_item(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


@register.simple_tag
def hourly_bar_chart(hours: Sequence[Any], title: str, unit: str = "events") -> SafeString:
    """A bar per hour (``HourCount`` rows), with a tick at each midnight."""
    points = [
        charts.Point(
            label=h.hour.strftime("%a %-d %b, %H:00"),
            value=h.events,
            tick=h.hour.strftime("%a %-d") if h.hour.hour == 0 else "",
        )
        for h in hours
    ]
    return charts.bar_chart(points, title=title, unit=unit)


@register.filter
def number(value: Any) -> str:
    """An integer with thousands separators: 12345 -> "12,345"."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@register.filter
def pretty_json(value: Any) -> str:
    """A before/after value of the audit log as indented JSON ("—" when there is none)."""
    if value is None:
        return "—"
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
