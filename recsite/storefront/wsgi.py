"""WSGI entry point of the demo storefront (``gunicorn recsite.storefront.wsgi:application``)."""

import os

from django.core.wsgi import get_wsgi_application

# Set, not setdefault: run_demo starts this process with the environment of manage.py,
# which already names recsite.settings.
os.environ["DJANGO_SETTINGS_MODULE"] = "recsite.storefront.settings"

application = get_wsgi_application()
