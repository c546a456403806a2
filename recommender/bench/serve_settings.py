"""Settings of the serving benchmark's web server: recsite's own, plus the trivial
reference endpoint of ``recommender.bench.serve_urls`` (never mounted in production)."""

from recsite.settings import *  # noqa: F403

ROOT_URLCONF = "recommender.bench.serve_urls"
