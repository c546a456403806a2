"""The WSGI application of recsite: ``gunicorn recsite.wsgi:application``.

Once the application is loaded (settings, apps, and the URLconf with every view and
serializer it imports, which Django would otherwise import on the first request),
``gc.freeze()`` moves all those long-lived objects to the collector's permanent
generation. The collector then never walks them again (shorter full collections in
the middle of requests), and with ``gunicorn --preload`` the workers forked from the
master keep sharing those memory pages instead of copying them when the collector
writes to their object headers.

Each web worker answers one request at a time, so its BLAS runs on one thread: with
several workers on a few cores, multi-threaded BLAS in the vector searches makes them
fight over the cores (the console's promotion preview went from over 300 ms to 117 ms
under load with one thread).
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # before numpy loads its BLAS
application = get_wsgi_application()


def _load_views() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports every URL module and the views they name)


_load_views()
gc.freeze()
