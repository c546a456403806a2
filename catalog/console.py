"""What every console view uses besides its access function: rendering a screen or
one of its htmx partials, and paginating a list.

A screen is one template; the regions htmx refreshes are ``{% partialdef %}`` blocks
of it. ``render_screen`` renders the whole page for a normal request and only the
named partial (``template#partial``) for an htmx request.
"""

import zoneinfo
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django_htmx.middleware import HtmxDetails

from catalog.models import Membership

PAGE_SIZE = 50


class HtmxHttpRequest(HttpRequest):
    """A request that passed django-htmx's middleware (the type console views take)."""

    htmx: HtmxDetails


def render_screen(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    *,
    membership: Membership | None,
    partial: str | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page, or only ``partial`` of it when htmx asked (and a partial is named)."""
    context = {"membership": membership, "shop": membership.shop if membership else None, **context}
    name = f"{template}#{partial}" if partial and getattr(request, "htmx", False) else template
    # Dates and times on the page read in the shop's time zone.
    with timezone.override(zoneinfo.ZoneInfo(membership.shop.timezone) if membership else None):
        return render(request, name, context, status=status)


def paginate(request: HttpRequest, items: QuerySet[Any], per_page: int = PAGE_SIZE) -> Page:
    """The page named by ``?page=`` (the last one when past the end, the first when not a number)."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))
