"""Shoppers: look one up by the shop's id (hashed, never stored), see their events,
erase them (admin, after a confirm)."""

from typing import Any

from django.test import Client

from catalog.models import AuditEntry, Event, Shopper
from catalog.services import shopper_key_hash
from tests.factories import EventFactory, ProductFactory, ShopperFactory


def shopper_with_events(shop: Any, external_id: str, count: int) -> Shopper:
    shopper = ShopperFactory(shop=shop, key_hash=shopper_key_hash(shop, external_id))
    product = ProductFactory(shop=shop, title="Oak lamp")
    for _ in range(count):
        EventFactory(shop=shop, shopper=shopper, product=product, type="click")
    return shopper


def test_lookup_shows_the_shoppers_events_without_storing_the_id(shop: Any, viewer: Client) -> None:
    shopper = shopper_with_events(shop, "customer-42", 3)
    response = viewer.post(f"/console/{shop.slug}/shoppers/", {"shopper_id": " customer-42 "}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="lookup-result"')
    assert f'Shopper <span class="mono">{shopper.key_hash[:16]}…</span>' in html
    assert html.count("Oak lamp</a>") == 3
    assert "3 events" in html
    assert 'id="shopper-recommendations"' in html
    assert "Erase shopper" not in html  # viewers cannot erase
    assert not Shopper.objects.filter(key_hash__contains="customer-42").exists()


def test_lookup_of_an_unknown_id_says_so(shop: Any, viewer: Client) -> None:
    html = viewer.post(f"/console/{shop.slug}/shoppers/", {"shopper_id": "nobody"}).content.decode()
    assert "No shopper with this id" in html


def test_erase_asks_first_then_deletes_the_shopper_and_their_events(shop: Any, admin: Client) -> None:
    shopper = shopper_with_events(shop, "customer-42", 2)
    other = shopper_with_events(shop, "customer-7", 1)
    url = f"/console/{shop.slug}/shoppers/erase/"

    dialog = admin.post(url, {"shopper_id": "customer-42"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Erase this shopper?" in dialog and 'name="shopper_id" value="customer-42"' in dialog
    assert Shopper.objects.filter(pk=shopper.pk).exists()

    done = admin.post(url, {"shopper_id": "customer-42", "confirmed": "yes"}, HTTP_HX_REQUEST="true").content.decode()

    assert not Shopper.objects.filter(pk=shopper.pk).exists()
    assert Event.objects.filter(shop=shop).count() == 1
    assert Event.objects.get(shop=shop).shopper_id == other.pk
    assert "The shopper is erased: 2 events and 0 rejected records deleted." in done
    assert "customer-42" not in done
    assert AuditEntry.objects.filter(shop=shop, action="erase", object_type="shopper").count() == 1


def test_erase_page_without_htmx_shows_the_confirm_page(shop: Any, admin: Client) -> None:
    shopper_with_events(shop, "customer-42", 1)
    response = admin.post(f"/console/{shop.slug}/shoppers/erase/", {"shopper_id": "customer-42"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'role="alertdialog"' in html
