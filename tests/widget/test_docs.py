"""The developer docs at /docs/: quick start and API reference pages, without a browser."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client


def test_the_quick_start_shows_the_snippet_for_this_server_escaped(db: Any, client: Client) -> None:
    response = client.get("/docs/")
    page = response.content.decode()

    assert response.status_code == 200
    assert (
        "&lt;script src=&quot;http://testserver/static/recsite/widget.js&quot;\n"
        "        data-key=&quot;pk_...&quot; defer&gt;&lt;/script&gt;"
    ) in page
    assert "&lt;div data-recsite-placement=&quot;product&quot; data-recsite-item=&quot;SKU-1&quot;&gt;" in page
    assert "curl -s &#x27;http://testserver/api/v1/recommendations?placement=product" in page
    assert "recsite.consent(true);" in page
    assert "--recsite-accent" in page
    # every section of the quick start is there
    for anchor in ("keys", "snippet", "events", "response", "theming", "consent", "js-api", "csp", "python", "limits"):
        assert f'id="{anchor}"' in page, anchor


def test_the_quick_start_shows_the_python_example_and_links_its_download(db: Any, client: Client) -> None:
    page = client.get("/docs/").content.decode()
    source = (Path(settings.BASE_DIR) / "static/recsite/examples/recsite_client.py").read_text()

    assert '<a href="/static/recsite/examples/recsite_client.py" download>' in page
    assert "class RecsiteClient:" in page
    assert "def _request(self, method: str, path: str, body: Any = None) -&gt; dict[str, Any]:" in page
    assert source.count("\n") > 150  # the whole file is shown, not an excerpt
    assert finders.find("recsite/examples/recsite_client.py")


def test_the_reference_page_loads_the_vendored_viewer_from_this_site(db: Any, client: Client) -> None:
    response = client.get("/docs/reference/")
    page = response.content.decode()

    assert response.status_code == 200
    assert '<script src="/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"' in page
    assert '<script src="/static/recsite/docs.js"' in page
    assert 'data-schema-url="/api/v1/schema"' in page
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")
    # the site's strict policy, unrelaxed: no inline code, no remote origin
    policy = response["Content-Security-Policy"]
    assert "unsafe" not in policy
    assert "script-src 'self' 'nonce-" in policy


def test_the_docs_need_no_login(db: Any, client: Client) -> None:
    assert client.get("/docs/").status_code == 200
    assert client.get("/docs/reference/").status_code == 200
