from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.audit import Actor
from recsite.onboarding import shop_create


class Command(BaseCommand):
    help = "Create a shop with its default placements and print its publishable and secret keys (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="short name used in URLs, e.g. my-shop")
        parser.add_argument("--name", help="display name (default: the slug)")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone, e.g. Europe/Berlin")
        parser.add_argument("--currency", default="EUR", help="ISO 4217 code")
        parser.add_argument(
            "--origin",
            action="append",
            default=[],
            dest="origins",
            help="an origin the publishable key may be used from, e.g. https://shop.example (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = shop_create(
                name=options["name"] or options["slug"],
                slug=options["slug"],
                timezone=options["timezone"],
                currency=options["currency"].upper(),
                allowed_origins=options["origins"],
                actor=Actor.system("createshop"),
            )
        except ValidationError as error:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())) from None
        self.stdout.write(f"Created shop {created.shop.slug!r} (id {created.shop.pk}).")
        self.stdout.write("Keys are shown once; store them now.")
        self.stdout.write(f"  publishable key (browser, widget): {created.publishable_key}")
        self.stdout.write(f"  secret key (your server only):     {created.secret_key}")
