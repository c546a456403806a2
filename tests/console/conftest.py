"""Console fixtures: a shop with one member per role, an outsider (admin of another shop),
and clients signed in as each; the admin's session has a verified TOTP device."""

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from campaigns import services as campaigns_services
from campaigns.models import SeasonalSuggestion
from campaigns.services import VariantSpec
from catalog.audit import Actor
from catalog.models import ApiKey, Membership, UploadJob
from tests.factories import (
    CategoryFactory,
    PlacementFactory,
    ProductFactory,
    PromotionFactory,
    SeasonalBoostFactory,
    ShopFactory,
)

ROLES = ("viewer", "merchandiser", "admin")


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    """Console tests create many users; the default hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_member(shop: Any, username: str, role: str) -> Any:
    user = get_user_model().objects.create_user(username=username, password="a long test password")
    Membership.objects.create(user=user, shop=shop, role=role)
    return user


def client_for(user: Any, *, verified: bool) -> Client:
    """A client signed in as ``user``; ``verified``: the session passed the second factor."""
    client = Client()
    client.force_login(user)
    if verified:
        device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


@pytest.fixture
def other_shop(db: Any) -> Any:
    return ShopFactory()


@pytest.fixture
def members(shop: Any) -> dict[str, Any]:
    return {role: make_member(shop, role, role) for role in ROLES}


@pytest.fixture
def outsider(other_shop: Any) -> Any:
    return make_member(other_shop, "outsider", "admin")


@pytest.fixture
def viewer(members: dict[str, Any]) -> Client:
    return client_for(members["viewer"], verified=False)


@pytest.fixture
def merchandiser(members: dict[str, Any]) -> Client:
    return client_for(members["merchandiser"], verified=False)


@pytest.fixture
def admin(members: dict[str, Any]) -> Client:
    return client_for(members["admin"], verified=True)


@pytest.fixture
def htmx() -> dict[str, str]:
    """Headers of an htmx request."""
    return {"HTTP_HX_REQUEST": "true"}


def console_routes() -> dict[str, set[str]]:
    """Every named URL of the console namespace and the parameters its path takes,
    found by walking the URL resolver."""

    def walk(patterns: list[Any], params: set[str]) -> dict[str, set[str]]:
        routes: dict[str, set[str]] = {}
        for pattern in patterns:
            own = params | set(pattern.pattern.converters)
            if isinstance(pattern, URLResolver):
                routes |= walk(pattern.url_patterns, own)
            elif isinstance(pattern, URLPattern) and pattern.name:
                routes[pattern.name] = own
        return routes

    console = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == "console")
    return walk(console.url_patterns, set())


def console_url(name: str, values: dict[str, Any]) -> str:
    """The URL of console page ``name``, taking the parameters it needs from ``values``."""
    params = console_routes()[name]
    return reverse(f"console:{name}", kwargs={key: values[key] for key in params})


@pytest.fixture
def world(shop: Any, members: dict[str, Any], outsider: Any, settings: Any, tmp_path: Any) -> dict[str, Any]:
    settings.UPLOAD_DIR = tmp_path
    product = ProductFactory(shop=shop)
    key = ApiKey.objects.filter(shop=shop, kind=ApiKey.Kind.PUBLISHABLE).first() or ApiKey.objects.create(
        shop=shop, kind=ApiKey.Kind.PUBLISHABLE, prefix="matrix", key_hash="0" * 64
    )
    job = UploadJob.objects.create(shop=shop, kind=UploadJob.Kind.PRODUCTS, file_name="p.csv", stored_name="x.csv")
    get_user_model().objects.create_user(username="newcomer", password="a long test password")
    target = Membership.objects.get(shop=shop, user=members["merchandiser"])
    placement = PlacementFactory(shop=shop, slug="pdp", kind="product")
    suggestion = SeasonalSuggestion.objects.create(
        shop=shop,
        category=CategoryFactory(shop=shop, name="Gifts", path="Gifts"),
        first_day="2026-12-07",
        last_day="2026-12-13",
        lift=1.8,
        window_volume=240.0,
        suggested_factor=1.4,
    )
    experiment = campaigns_services.experiment_create(
        shop=shop,
        actor=Actor.system("tests"),
        fields={"name": "Matrix test", "placement": placement},
        variants=[VariantSpec("control", 50, is_control=True), VariantSpec("treatment", 50)],
    )
    return {
        "kwargs": {
            "shop_slug": shop.slug,
            "sku": product.sku,
            "key_id": key.pk,
            "membership_id": target.pk,
            "job_id": job.pk,
            "placement_slug": placement.slug,
            "strategy_id": placement.default_strategy_id,
            "promotion_id": PromotionFactory(shop=shop).pk,
            "boost_id": SeasonalBoostFactory(shop=shop).pk,
            "suggestion_id": suggestion.pk,
            "experiment_id": experiment.pk,
        },
        "clients": {
            "anonymous": Client(),
            "viewer": client_for(members["viewer"], verified=False),
            "merchandiser": client_for(members["merchandiser"], verified=False),
            "admin": client_for(members["admin"], verified=True),
            "outsider": client_for(outsider, verified=True),
        },
    }
