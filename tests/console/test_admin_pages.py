"""Audit log filters, members (add, change role, remove; the last admin stays), and shop
settings validated by Shop.clean and audited."""

import re
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client

from catalog.audit import Actor, audit_record
from catalog.models import AuditEntry, Membership, Shop
from tests.console.test_permissions import SETTINGS_FORM


def entry(shop: Any, actor: str, action: str, object_type: str, at: datetime) -> None:
    created = audit_record(shop=shop, actor=Actor(label=actor), action=action, object_type=object_type, object_id=1)
    AuditEntry.objects.filter(pk=created.pk).update(at=at)


def test_audit_log_filters_by_actor_action_object_and_dates(shop: Any, viewer: Client) -> None:
    AuditEntry.objects.filter(shop=shop).delete()
    entry(shop, "user:ada", "create", "api_key", datetime(2026, 5, 1, 10, tzinfo=UTC))
    entry(shop, "user:bob", "update", "shop", datetime(2026, 5, 2, 10, tzinfo=UTC))
    entry(shop, "key:abc", "revoke", "api_key", datetime(2026, 5, 3, 23, 30, tzinfo=UTC))  # 4 May in Berlin
    url = f"/console/{shop.slug}/audit/"

    def actors(**params: str) -> list[str]:
        html = viewer.get(url, params, HTTP_HX_REQUEST="true").content.decode()
        return re.findall(r'<td class="mono">([^<]+)</td>', html)

    assert actors() == ["key:abc", "user:bob", "user:ada"]
    assert actors(actor="ada") == ["user:ada"]
    assert actors(action="update") == ["user:bob"]
    assert actors(object_type="api_key") == ["key:abc", "user:ada"]
    assert actors(date_from="2026-05-02", date_to="2026-05-03") == ["user:bob"]
    assert actors(date_from="2026-05-04") == ["key:abc"]
    page = viewer.get(url).content.decode()
    assert '<option value="revoke">revoke</option>' in page and '<option value="shop">shop</option>' in page


def test_audit_log_date_range_the_wrong_way_round_is_explained(shop: Any, viewer: Client) -> None:
    html = viewer.get(
        f"/console/{shop.slug}/audit/", {"date_from": "2026-05-03", "date_to": "2026-05-01"}
    ).content.decode()
    assert "The end date is before the start date." in html


def test_admin_adds_a_member_by_username(shop: Any, admin: Client) -> None:
    get_user_model().objects.create_user(username="newcomer", password="x")
    response = admin.post(
        f"/console/{shop.slug}/members/", {"username": "Newcomer", "role": "merchandiser"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert Membership.objects.get(shop=shop, user__username="newcomer").role == "merchandiser"
    assert "newcomer is now a merchandiser" in html
    assert AuditEntry.objects.filter(shop=shop, object_type="membership", action="create").count() == 1


def test_adding_an_unknown_user_explains_and_links_the_error(shop: Any, admin: Client) -> None:
    response = admin.post(f"/console/{shop.slug}/members/", {"username": "ghost", "role": "viewer"})
    html = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 400
    assert "There is no user named 'ghost'" in html
    assert 'aria-describedby="id_username_error"' in html


def test_role_change_and_removal(shop: Any, members: dict[str, Any], admin: Client) -> None:
    target = Membership.objects.get(shop=shop, user=members["viewer"])
    changed = admin.post(
        f"/console/{shop.slug}/members/{target.pk}/role/", {"role": "merchandiser"}, HTTP_HX_REQUEST="true"
    )
    assert "viewer is now a merchandiser." in changed.content.decode()
    target.refresh_from_db()
    assert target.role == "merchandiser"

    dialog = admin.post(f"/console/{shop.slug}/members/{target.pk}/remove/", HTTP_HX_REQUEST="true").content.decode()
    assert "Remove viewer from" in dialog
    admin.post(f"/console/{shop.slug}/members/{target.pk}/remove/", {"confirmed": "yes"}, HTTP_HX_REQUEST="true")
    assert not Membership.objects.filter(pk=target.pk).exists()
    assert list(AuditEntry.objects.filter(shop=shop, object_type="membership").values_list("action", flat=True)) == [
        "delete",
        "update",
    ]


def test_the_last_admin_can_be_neither_demoted_nor_removed(shop: Any, members: dict[str, Any], admin: Client) -> None:
    own = Membership.objects.get(shop=shop, user=members["admin"])
    demoted = admin.post(f"/console/{shop.slug}/members/{own.pk}/role/", {"role": "viewer"}, HTTP_HX_REQUEST="true")
    removed = admin.post(f"/console/{shop.slug}/members/{own.pk}/remove/", {"confirmed": "yes"}, HTTP_HX_REQUEST="true")
    own.refresh_from_db()
    assert own.role == "admin"
    assert "You cannot demote the last admin of the shop" in demoted.content.decode()
    assert "You cannot remove the last admin of the shop" in removed.content.decode()


def test_settings_are_saved_validated_and_audited(shop: Any, admin: Client) -> None:
    form = {**SETTINGS_FORM, "currency": "usd", "weight_purchase": "10"}
    response = admin.post(f"/console/{shop.slug}/settings/", form)
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/settings/")
    saved = Shop.objects.get(pk=shop.pk)
    assert (saved.name, saved.currency, saved.decay_half_life_days, saved.retrain_every_hours) == (
        "Renamed",
        "USD",
        7.0,
        12,
    )
    assert saved.event_weights == {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 10.0, "impression": 0.0}
    audit = AuditEntry.objects.get(shop=shop, object_type="shop", action="update")
    assert set(audit.after) == {"name", "currency", "event_weights", "decay_half_life_days", "retrain_every_hours"}
    assert audit.before["currency"] == "EUR"


def test_invalid_settings_are_refused_with_errors_and_nothing_changes(shop: Any, admin: Client) -> None:
    form = {**SETTINGS_FORM, "weight_view": "-1", "timezone": "Mars/Olympus", "decay_half_life_days": "0"}
    response = admin.post(f"/console/{shop.slug}/settings/", form)
    html = response.content.decode()
    assert response.status_code == 400
    assert 'id="id_weight_view_error"' in html and 'id="id_timezone_error"' in html
    assert 'id="id_decay_half_life_days_error"' in html
    assert Shop.objects.get(pk=shop.pk).name == shop.name
    assert not AuditEntry.objects.filter(shop=shop, object_type="shop", action="update").exists()
