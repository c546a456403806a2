"""The developer docs in headless Chromium: the pages render, the vendored Swagger UI
shows the schema, and nothing breaks the site's Content-Security-Policy."""

from typing import Any

import pytest

from tests.widget.conftest import Tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def test_the_quick_start_renders_without_csp_violations(tab: Tab, live_server: Any) -> None:
    response = tab.page.goto(f"{live_server.url}/docs/")
    assert response is not None and response.status == 200
    assert tab.page.locator("h1").text_content() == "Quick start"
    assert tab.csp_violations() == []
    tab.screenshot("docs-quickstart")


def test_the_reference_renders_the_schema_in_swagger_ui_without_csp_violations(tab: Tab, live_server: Any) -> None:
    page = tab.page
    page.goto(f"{live_server.url}/docs/reference/")

    # The operations of the public contract are listed
    page.get_by_text("Send events", exact=True).wait_for()
    for path in ("/api/v1/events", "/api/v1/products", "/api/v1/shoppers/{shopper_id}", "/api/v1/promotions"):
        assert page.locator(".opblock-summary-path", has_text=path).count() >= 1, path

    # Expanding an operation, trying it and opening the key dialog still need nothing inline
    page.get_by_text("Send events", exact=True).click()
    page.get_by_role("button", name="Try it out").click()
    page.locator(".opblock-body textarea").first.wait_for()
    page.get_by_role("button", name="Authorize").first.click()
    page.get_by_text("Available authorizations").wait_for()
    assert tab.csp_violations() == []
    assert tab.errors == []
    tab.screenshot("docs-reference")
