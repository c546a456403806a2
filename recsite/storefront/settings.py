"""Settings of the demo storefront: recsite's settings (same database, catalog apps),
its own URLs, fewer middleware, and the strict Content-Security-Policy a careful shop
would send.

The storefront only reads the catalog (its pages stand in for a shop's own product
pages); it has no login, no forms that post, no API. Its CSP is the one the widget is
built to live under (see the shop-integration issue):

    script-src 'self' <api origin>; connect-src <api origin>; img-src https:

with no 'unsafe-inline' anywhere. One addition: img-src also allows 'self', because the
demo runs on plain http and serves its own product posters (/img/<sku>.svg); on an
https shop 'self' is already covered by https:.
"""

from csp.constants import NONE, SELF

from recsite.env import env_bool
from recsite.settings import *  # noqa: F403
from recsite.settings import VAR_DIR
from recsite.storefront.config import api_origin

ROOT_URLCONF = "recsite.storefront.urls"
WSGI_APPLICATION = "recsite.storefront.wsgi.application"

# The catalog apps for their models; nothing of the console (no sessions, no login).
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",  # catalog models refer to the user model
    "django.contrib.staticfiles",
    "csp",
    "catalog",
    "campaigns",
    "recommender",
    "analytics",
    "recsite",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

STOREFRONT_API_ORIGIN = api_origin(VAR_DIR)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF, STOREFRONT_API_ORIGIN],
        "connect-src": [STOREFRONT_API_ORIGIN],
        "img-src": [SELF, "https:"],
        "style-src": [SELF],
        "font-src": [SELF],
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# RECSITE_STOREFRONT_REQUIRE_CONSENT=1: the shop asks before anything is stored or sent
# (a banner on every page; the widget runs with data-require-consent="true").
STOREFRONT_REQUIRE_CONSENT = env_bool("RECSITE_STOREFRONT_REQUIRE_CONSENT", False)
