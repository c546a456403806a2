"""The console shell: sign-in with lockout, the TOTP second factor for admin pages, the
shop chooser, and the security of every page (CSP with nonces, htmx without eval)."""

import os
import re
import secrets
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from catalog.models import Membership
from tests.console.conftest import client_for, console_url
from tests.console.test_permissions import MATRIX, Needs
from tests.factories import ShopFactory

PASSWORD = "a long test password"


def sign_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post(reverse("console:login"), {"username": username, "password": password})


def current_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


# --- Sign-in ---------------------------------------------------------------------------


def test_root_redirects_to_the_console(client: Client) -> None:
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, "/console/")


def test_sign_in_leads_a_one_shop_member_to_its_dashboard(shop: Any, members: dict[str, Any]) -> None:
    client = Client()
    response = sign_in(client, "viewer")
    assert (response.status_code, response["Location"]) == (302, "/console/")
    response = client.get("/console/")
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/")


def test_wrong_password_shows_the_form_again_with_the_error(shop: Any, members: dict[str, Any]) -> None:
    response = sign_in(Client(), "viewer", "wrong password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_sign_in_is_locked_after_the_failure_limit(shop: Any, members: dict[str, Any]) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "viewer", "wrong password").status_code == 200
    locked = sign_in(client, "viewer", "wrong password")
    assert locked.status_code == 429
    assert "Sign-in paused" in locked.content.decode()
    # Even the right password is refused while locked.
    again = sign_in(client, "viewer")
    assert again.status_code == 429
    assert "_auth_user_id" not in client.session


def test_sign_out_needs_post_and_ends_the_session(viewer: Client) -> None:
    assert viewer.get(reverse("console:logout")).status_code == 405
    response = viewer.post(reverse("console:logout"))
    assert (response.status_code, response["Location"]) == (302, reverse("console:login"))
    assert "_auth_user_id" not in viewer.session


# --- Shop chooser --------------------------------------------------------------------


def test_member_of_several_shops_chooses_one(shop: Any, members: dict[str, Any]) -> None:
    second = ShopFactory(name="Second Shop")
    Membership.objects.create(user=members["viewer"], shop=second, role="admin")
    response = client_for(members["viewer"], verified=False).get("/console/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="shop-list__item"') == 2
    assert f'href="/console/{second.slug}/"' in html and f'href="/console/{shop.slug}/"' in html


def test_switcher_lists_every_shop_of_the_user(shop: Any, members: dict[str, Any]) -> None:
    second = ShopFactory(name="Second Shop")
    Membership.objects.create(user=members["viewer"], shop=second, role="admin")
    html = client_for(members["viewer"], verified=False).get(f"/console/{shop.slug}/").content.decode()
    menu = html[html.index('class="switcher__menu"') :]
    menu = menu[: menu.index("</ul>")]
    # Ordered by shop name: "Second Shop" before "Shop <n>".
    assert re.findall(r'href="/console/([^/"]+)/"', menu) == [second.slug, shop.slug]


def test_user_without_a_shop_is_told_what_to_do(db: Any) -> None:
    from django.contrib.auth import get_user_model

    lonely = get_user_model().objects.create_user(username="lonely", password=PASSWORD)
    response = client_for(lonely, verified=False).get("/console/")
    assert response.status_code == 200
    assert "You are not a member of any shop yet" in response.content.decode()


# --- Second factor -----------------------------------------------------------------------


def test_admin_without_a_device_is_led_to_set_one_up(shop: Any, members: dict[str, Any]) -> None:
    client = client_for(members["admin"], verified=False)
    members_url = f"/console/{shop.slug}/members/"

    response = client.get(members_url)
    assert (response.status_code, response["Location"]) == (
        302,
        f"/console/account/two-factor/?next={members_url.replace('/', '%2F')}",
    )

    page = client.get(response["Location"])
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=members["admin"])
    assert page.status_code == 200
    assert device.confirmed is False
    assert 'class="segno"' in html and "Set up two-factor authentication" in html
    assert 'id="totp-secret"' in html

    confirmed = client.post(reverse("console:two-factor"), {"token": current_token(device), "next": members_url})
    assert (confirmed.status_code, confirmed["Location"]) == (302, members_url)
    device.refresh_from_db()
    assert device.confirmed is True
    assert client.get(members_url).status_code == 200


def test_admin_with_a_device_enters_a_code_each_session(shop: Any, members: dict[str, Any]) -> None:
    device = TOTPDevice.objects.create(user=members["admin"], name="phone", confirmed=True)
    client = client_for(members["admin"], verified=False)

    page = client.get(reverse("console:two-factor"))
    assert "Enter your code" in page.content.decode()
    assert 'class="segno"' not in page.content.decode()

    wrong = client.post(
        reverse("console:two-factor"), {"token": "123456" if current_token(device) != "123456" else "654321"}
    )
    assert wrong.status_code == 400
    assert "That code is not valid" in wrong.content.decode()
    assert client.get(f"/console/{shop.slug}/settings/").status_code == 302

    device.refresh_from_db()
    device.throttling_failure_count = 0  # the wrong code above throttles the next try
    device.throttling_failure_timestamp = None
    device.save()
    ok = client.post(reverse("console:two-factor"), {"token": current_token(device)})
    assert (ok.status_code, ok["Location"]) == (302, "/console/")
    assert client.get(f"/console/{shop.slug}/settings/").status_code == 200


def test_two_factor_ignores_a_next_url_off_this_site(shop: Any, members: dict[str, Any]) -> None:
    device = TOTPDevice.objects.create(user=members["admin"], name="phone", confirmed=True)
    client = client_for(members["admin"], verified=False)
    response = client.post(
        reverse("console:two-factor"), {"token": current_token(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/console/"


def test_viewer_pages_need_no_second_factor_even_for_an_admin(shop: Any, members: dict[str, Any]) -> None:
    client = client_for(members["admin"], verified=False)
    assert client.get(f"/console/{shop.slug}/catalog/").status_code == 200


def test_htmx_request_to_an_admin_page_redirects_the_whole_page(shop: Any, members: dict[str, Any]) -> None:
    client = client_for(members["admin"], verified=False)
    response = client.get(f"/console/{shop.slug}/members/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/console/account/two-factor/?next=")


def test_anonymous_htmx_request_redirects_the_whole_page_to_sign_in(shop: Any) -> None:
    response = Client().get(
        f"/console/{shop.slug}/catalog/?q=x",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver/console/{shop.slug}/catalog/",
    )
    assert response["HX-Redirect"] == f"/console/login/?next=%2Fconsole%2F{shop.slug}%2Fcatalog%2F"


# --- Security of every page ----------------------------------------------------------------

# Pages that answer GET themselves (not those that send a plain GET back to their page).
GET_PAGES = sorted(
    name
    for name, methods in MATRIX.items()
    if "GET" in methods and isinstance(methods["GET"], Needs) and methods["GET"].ok == 200
)


def assert_strict_page(response: Any) -> None:
    policy = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce, policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "style-src 'self'" in policy
    html = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts, "htmx and console.js are loaded"
    for tag in scripts:
        assert f'nonce="{nonce.group(1)}"' in tag and " src=" in tag, tag
    assert re.search(r"\sstyle=", html) is None
    assert "<style" not in html
    assert "hx-on" not in html and "hx-vars" not in html and "javascript:" not in html
    config = '{"allowEval":false, "includeIndicatorStyles": false, "historyCacheSize": 0}'
    assert f"<meta name=\"htmx-config\" content='{config}'>" in html
    assert 'hx-history="false"' in html
    assert re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"[A-Za-z0-9]+\"\}'", html)
    for attribute in re.findall(r'hx-get="([^"]*)"', html):
        assert f'href="{attribute}"' in html or "every 1s" in html or "hx-trigger" in html


@pytest.mark.parametrize("name", GET_PAGES)
def test_every_shop_page_has_a_strict_csp(world: dict[str, Any], name: str) -> None:
    response = world["clients"]["admin"].get(console_url(name, world["kwargs"]))
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    if not response["Content-Type"].startswith("text/html"):  # a download (CSV): the headers only
        assert "unsafe-inline" not in response["Content-Security-Policy"]
        assert response["Content-Disposition"].startswith("attachment")
        return
    assert_strict_page(response)


@pytest.mark.parametrize("name", ["login", "two-factor"])
def test_sign_in_pages_have_a_strict_csp(world: dict[str, Any], name: str) -> None:
    client = Client() if name == "login" else world["clients"]["viewer"]
    response = client.get(reverse(f"console:{name}"))
    assert response.status_code == 200
    assert_strict_page(response)


def test_links_that_htmx_loads_also_work_without_it(world: dict[str, Any], shop: Any) -> None:
    """Every hx-get on a link also has the same href (forms carry an action instead)."""
    from tests.factories import ProductFactory

    for _ in range(60):
        ProductFactory(shop=shop)
    html = world["clients"]["admin"].get(f"/console/{shop.slug}/catalog/").content.decode()
    links = re.findall(r"<a\b[^>]*>", html)
    with_hx = [tag for tag in links if "hx-get=" in tag]
    assert with_hx, "the pagination links use htmx"
    for tag in with_hx:
        assert re.search(r'hx-get="([^"]*)"', tag).group(1) == re.search(r'href="([^"]*)"', tag).group(1)


def test_deploy_check_passes_with_production_settings(tmp_path: Any) -> None:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "SECURE_COOKIES": "1",
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "RECSITE_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- No inline code in any template -------------------------------------------------------------


def project_templates() -> list[Any]:
    """Every template of the project: templates/ and the apps' own template folders."""
    from pathlib import Path

    base = Path(settings.BASE_DIR)
    folders = [
        base / "templates",
        *(base / app / "templates" for app in ("catalog", "campaigns", "recommender", "analytics", "recsite")),
    ]
    return sorted(path for folder in folders if folder.is_dir() for path in folder.rglob("*.html"))


TAG = re.compile(r"<[a-zA-Z][^<>]*>", re.S)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def inline_code(html: str) -> list[str]:
    """What a strict CSP (no 'unsafe-inline', no 'unsafe-eval') refuses, as found in a template."""
    problems = []
    for tag in TAG.findall(html):
        name = tag[1:].split(None, 1)[0].rstrip(">").lower()
        if name == "script" and " src=" not in tag:
            problems.append(f"inline script: {tag}")
        if name == "style":
            problems.append(f"style element: {tag}")
        if re.search(r"\sstyle\s*=", tag):
            problems.append(f"style attribute: {tag}")
        if INLINE_HANDLER.search(tag):
            problems.append(f"event handler attribute: {tag}")
        if re.search(r"\shx-(on|vars)\b", tag):
            problems.append(f"htmx attribute that evaluates code: {tag}")
        if "javascript:" in tag.lower():
            problems.append(f"javascript: URL: {tag}")
    return problems


def test_inline_code_is_found_by_the_template_scan() -> None:
    html = (
        '<script>alert(1)</script><script src="/x.js"></script><p style="color:red">'
        '<button onclick="go()"><style>p{}</style><a href="javascript:void(0)"><div hx-on:click="x()">'
    )
    assert [problem.split(":")[0] for problem in inline_code(html)] == [
        "inline script",
        "style attribute",
        "event handler attribute",
        "style element",
        "javascript",
        "htmx attribute that evaluates code",
    ]


def test_no_template_has_inline_scripts_styles_or_handlers() -> None:
    templates = project_templates()
    assert len(templates) > 40, "the scan sees the console's templates"
    problems = {str(path): inline_code(path.read_text()) for path in templates}
    assert {path: found for path, found in problems.items() if found} == {}
