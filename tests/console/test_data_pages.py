"""Data pages: events per hour (the SQL aggregate behind the chart), the dashboard's
ingestion health, rejections with filters, and file uploads imported by a real Celery
task (eager) with progress polled from the job row."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from catalog.console_selectors import events_per_hour, ingestion_health
from catalog.models import Event, Product, Rejection, UploadJob
from recsite.celery import app as celery_app
from tests.factories import EventFactory, ProductFactory, ShopFactory


def received(shop: Any, at: datetime, count: int = 1) -> None:
    for _ in range(count):
        event = EventFactory(shop=shop)
        Event.objects.filter(pk=event.pk).update(received_at=at)


def test_events_per_hour_counts_each_hour_of_the_last_7_days_in_the_shop_time_zone(db: Any) -> None:
    shop = ShopFactory(timezone="Europe/Berlin")
    now = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)  # 13:30 in Berlin
    received(shop, datetime(2026, 3, 10, 12, 5, tzinfo=UTC), 3)  # 13:05 Berlin, the current hour
    received(shop, datetime(2026, 3, 10, 10, 59, tzinfo=UTC), 2)  # 11:59 Berlin
    received(shop, datetime(2026, 3, 3, 13, 0, tzinfo=UTC))  # 14:00 Berlin seven days ago: the first bucket
    received(shop, datetime(2026, 3, 3, 12, 59, tzinfo=UTC))  # just before the window
    received(ShopFactory(), datetime(2026, 3, 10, 12, 5, tzinfo=UTC), 4)  # another shop

    hours = events_per_hour(shop, now)

    assert len(hours) == 168
    assert hours[0].hour.isoformat() == "2026-03-03T14:00:00+01:00"
    assert hours[-1].hour.isoformat() == "2026-03-10T13:00:00+01:00"
    nonzero = {h.hour.strftime("%d %H:%M"): h.events for h in hours if h.events}
    assert nonzero == {"03 14:00": 1, "10 11:00": 2, "10 13:00": 3}


def test_ingestion_health_counts(shop: Any) -> None:
    now = timezone.now()
    received(shop, now - timedelta(minutes=10), 2)
    received(shop, now - timedelta(hours=5), 3)
    received(shop, now - timedelta(days=2), 1)
    Rejection.objects.create(shop=shop, kind="event", source="api", payload="{}")
    Rejection.objects.create(shop=shop, kind="product", source="api", payload="{}")
    ProductFactory(shop=shop, active=False)

    health = ingestion_health(shop, now)

    products = Product.objects.filter(shop=shop)
    assert (health.events_last_hour, health.events_last_day) == (2, 5)
    assert (health.rejected_events_last_day, health.rejected_products_last_day) == (1, 1)
    assert (health.products_total, health.products_active) == (products.count(), products.count() - 1)
    assert health.products_without_embedding == products.count() - 1


def test_dashboard_shows_health_and_a_chart(shop: Any, viewer: Client) -> None:
    received(shop, timezone.now() - timedelta(minutes=5), 4)
    html = viewer.get(f"/console/{shop.slug}/").content.decode()
    assert re.search(r"Events, last hour</p>\s*<p class=\"stat__value\">4</p>", html)
    assert html.count('<rect class="chart__bar"') == 168
    assert "4 events in total over 168 intervals" in html


def test_new_shop_dashboard_shows_the_getting_started_checklist(shop: Any, viewer: Client) -> None:
    html = viewer.get(f"/console/{shop.slug}/").content.decode()
    assert "Get " in html and "ready for its first training" in html
    assert "No events yet" in html


def test_rejections_are_filtered_and_show_reasons(shop: Any, viewer: Client) -> None:
    Rejection.objects.create(
        shop=shop,
        kind="event",
        source="api",
        payload='{"event_id": "e-1"}',
        record_id="e-1",
        reasons=[{"field": "ts", "reason": "is in the future"}],
    )
    Rejection.objects.create(
        shop=shop,
        kind="product",
        source="import",
        payload='{"sku": "P-1"}',
        record_id="P-1",
        line=7,
        reasons=[{"field": "price", "reason": "must not be negative"}],
    )
    url = f"/console/{shop.slug}/data/rejections/"

    def ids(**params: str) -> list[str]:
        html = viewer.get(url, params, HTTP_HX_REQUEST="true").content.decode()
        return re.findall(r'<td class="mono">([^<]+)</td>', html)

    assert ids() == ["P-1", "e-1"]
    assert ids(kind="event") == ["e-1"]
    assert ids(source="import") == ["P-1"]
    assert ids(q="negative") == ["P-1"]
    html = viewer.get(url).content.decode()
    assert "<code>price</code> must not be negative" in html and "Import, line 7" in html


@pytest.fixture
def eager_celery() -> Any:
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_product_upload_is_imported_by_the_task_and_progress_reaches_done(
    shop: Any,
    merchandiser: Client,
    settings: Any,
    tmp_path: Any,
    eager_celery: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.UPLOAD_DIR = tmp_path
    body = b"sku,title,price\nLAMP-1,Oak lamp,20.00\nMUG-1,Mug,-5\nBOWL-1,Bowl,12.50\n"
    upload = SimpleUploadedFile("catalog.csv", body, content_type="text/csv")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = merchandiser.post(f"/console/{shop.slug}/data/uploads/", {"kind": "products", "file": upload})
    job = UploadJob.objects.get(shop=shop)
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/data/uploads/{job.pk}/")
    assert (job.status, job.bytes_total, job.file_name) == ("queued", len(body), "catalog.csv")
    assert (tmp_path / job.stored_name).read_bytes() == body

    queued = merchandiser.get(f"/console/{shop.slug}/data/uploads/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in queued and 'value="0"' in queued and "Queued" in queued

    for callback in callbacks:  # the commit: the task is sent, and runs eagerly
        callback()

    job.refresh_from_db()
    assert (job.status, job.bytes_done, job.percent_done) == ("done", len(body), 100)
    assert (job.records_accepted, job.records_rejected, job.attempts) == (2, 1, 1)
    assert sorted(Product.objects.filter(shop=shop).values_list("sku", flat=True)) == ["BOWL-1", "LAMP-1"]
    rejection = Rejection.objects.get(shop=shop)
    assert (rejection.source, rejection.line) == ("import", 3)
    assert not (tmp_path / job.stored_name).exists()

    done = merchandiser.get(f"/console/{shop.slug}/data/uploads/{job.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done
    assert 'value="100"' in done and "Done" in done and "2 accepted" in done and "1 rejected" in done


def test_upload_whose_file_cannot_be_read_fails_with_the_reason(
    shop: Any,
    merchandiser: Client,
    settings: Any,
    tmp_path: Any,
    eager_celery: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.UPLOAD_DIR = tmp_path
    upload = SimpleUploadedFile("events.csv", b"when,who\n1,2\n", content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        merchandiser.post(f"/console/{shop.slug}/data/uploads/", {"kind": "events", "file": upload})
    job = UploadJob.objects.get(shop=shop)
    assert job.status == "failed"
    html = merchandiser.get(f"/console/{shop.slug}/data/uploads/{job.pk}/").content.decode()
    assert "Failed" in html and job.error and job.error in html.replace("&#x27;", "'")


def test_upload_refuses_other_file_types_with_an_accessible_error(shop: Any, merchandiser: Client) -> None:
    upload = SimpleUploadedFile("catalog.xlsx", b"PK..", content_type="application/octet-stream")
    response = merchandiser.post(f"/console/{shop.slug}/data/uploads/", {"kind": "products", "file": upload})
    html = response.content.decode()
    assert response.status_code == 400
    assert 'aria-describedby="id_file_helptext id_file_error"' in html and 'aria-invalid="true"' in html
    assert '<ul class="field__errors" id="id_file_error"><li>Upload a .csv, .jsonl, .ndjson file.</li></ul>' in html
    assert UploadJob.objects.count() == 0


def test_htmx_upload_answers_with_the_uploader_and_the_new_job(
    shop: Any, merchandiser: Client, settings: Any, tmp_path: Any
) -> None:
    settings.UPLOAD_DIR = tmp_path
    upload = SimpleUploadedFile("events.jsonl", b'{"event_id": "1"}\n')
    response = merchandiser.post(
        f"/console/{shop.slug}/data/uploads/", {"kind": "events", "file": upload}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    job = UploadJob.objects.get(shop=shop)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="uploader"')
    assert f'id="job-{job.pk}"' in html and 'hx-trigger="every 1s"' in html
    assert 'hx-swap-oob="true"' in html and "events.jsonl is uploaded" in html
