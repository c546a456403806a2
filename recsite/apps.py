from django.apps import AppConfig


class RecsiteConfig(AppConfig):
    """The project package as an app: it holds commands that span apps (createshop, load_demo)."""

    name = "recsite"
    verbose_name = "recsite"
