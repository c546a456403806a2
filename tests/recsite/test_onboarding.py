"""Onboarding a shop: slugs that would collide with recsite's own URLs are refused."""

import re
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from catalog.audit import Actor
from catalog.models import ApiKey, Shop
from recsite import console_urls, urls
from recsite.onboarding import RESERVED_SHOP_SLUGS, shop_create

ACTOR = Actor.system("tests")


def fixed_first_segments(patterns: list[Any]) -> set[str]:
    """The literal first path segment of every route (``login/`` -> ``login``); routes
    that start with a converter (``<slug:shop_slug>/``) or are empty have none."""
    segments = set()
    for pattern in patterns:
        route = str(pattern.pattern)
        first = route.split("/", 1)[0]
        if first and not first.startswith("<") and re.fullmatch(r"[\w-]+", first):
            segments.add(first)
    return segments


def test_every_fixed_path_next_to_the_shop_slug_is_reserved() -> None:
    # The console's own pages share /console/<x>/ with the shops, the site's paths share
    # the root; STATIC_URL is served beside them.
    taken = fixed_first_segments(console_urls.urlpatterns) | fixed_first_segments(urls.urlpatterns)
    taken.add(settings.STATIC_URL.strip("/"))
    assert {"login", "logout", "account", "console", "api", "docs", "admin", "static"} <= taken
    assert taken <= RESERVED_SHOP_SLUGS


@pytest.mark.parametrize("slug", ["login", "logout", "account", "docs", "api", "admin", "static", "Login"])
def test_a_reserved_slug_is_refused_with_a_clear_error_and_nothing_is_created(db: None, slug: str) -> None:
    with pytest.raises(ValidationError) as caught:
        shop_create(name="Shop", slug=slug, actor=ACTOR)

    assert caught.value.message_dict == {
        "slug": [f"{slug!r} is reserved for recsite's own pages (/console/{slug}/); choose another slug."]
    }
    assert Shop.objects.count() == 0
    assert ApiKey.objects.count() == 0


def test_createshop_reports_a_reserved_slug(db: None) -> None:
    with pytest.raises(CommandError) as caught:
        call_command("createshop", "logout")
    assert str(caught.value) == (
        "slug: 'logout' is reserved for recsite's own pages (/console/logout/); choose another slug."
    )
    assert not Shop.objects.exists()


def test_a_slug_that_only_starts_like_a_reserved_one_is_fine_and_gets_its_console(db: None) -> None:
    created = shop_create(name="Login Store", slug="login-store", actor=ACTOR)

    assert created.shop.slug == "login-store"
    assert reverse("console:dashboard", kwargs={"shop_slug": "login-store"}) == "/console/login-store/"
    assert created.publishable_key.startswith("pk_") and created.secret_key.startswith("sk_")
