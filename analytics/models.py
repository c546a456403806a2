"""Analytics rows: attribution, rollups, per-unit experiment data and the rollup cursor.

Everything here is *derived*: computed by analytics.rollups from the raw event log
(catalog.Event) and the served-list log (recommender.ServedList), and recomputable from
them at any time. The console and the API read only these tables.

- ``AttributedEvent``: one row per impression, click, add-to-cart or purchase that is
  tied to a served list - through its request_id, or (purchases) through a click of the
  same shopper on the same product within the shop's attribution window.
- Rollups, one table per family, each with an hourly and a daily ``period``: the bucket
  ``start`` is the first instant (UTC) of a *local* hour or day of the shop (see
  analytics.buckets). Experiment columns use 0 / "" for "no experiment", so that the
  unique constraints hold without NULLs.
- ``ExperimentUnitHour`` / ``ExperimentUnit``: per unit (shopper or session, by its keyed
  hash) of one experiment version: exposures and what followed; the analysis reads
  ``ExperimentUnit`` only (one row per unit), never raw events.
- ``RollupState`` (the per-shop cursor and lock row) and ``DirtyHour`` (hours waiting to
  be recomputed).
"""

from decimal import Decimal
from typing import Any

from django.db import models

from catalog.models import Event, Shop

MONEY: dict[str, Any] = {"max_digits": 16, "decimal_places": 2, "default": Decimal("0.00")}


class Period(models.TextChoices):
    HOUR = "hour"
    DAY = "day"


class AttributionKind(models.TextChoices):
    REQUEST_ID = "request_id"  # the event carried the served list's request id
    WINDOW = "window"  # a purchase of an item the shopper clicked in a recommendation, within the window


class RollupState(models.Model):
    """The per-shop cursor of incremental processing, and the lock row of a rollup step.

    ``events_through`` / ``served_through``: events received (``received_at``) and lists
    served (``served_at``) up to these instants have marked their hours dirty. Every step
    holds this row locked (``SELECT ... FOR UPDATE SKIP LOCKED`` on Postgres; SQLite's
    write lock elsewhere), so steps of one shop never run at once. ``timezone`` and
    ``attribution_window_hours`` are what the stored rollups were built with: when the
    shop's settings differ, the rollups are rebuilt.
    """

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, primary_key=True, related_name="+")
    events_through = models.DateTimeField(null=True, blank=True)
    served_through = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, blank=True, default="")
    attribution_window_hours = models.PositiveIntegerField(null=True, blank=True)
    last_step_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollup state of shop {self.shop_id}"


class DirtyHour(models.Model):
    """An hour bucket whose rollups must be recomputed (new or late data fell into it)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    start = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "start"], name="dirty_hour_unique")]


class ServedProductBit(models.Model):
    """The bit that stands for a product in the coverage bitmaps (analytics.bitmaps):
    numbers 0, 1, 2, ... per shop, given out when a product is first served, never
    reused or renumbered."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    product_id = models.BigIntegerField()
    bit = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "product_id"], name="served_product_bit_unique_product"),
            models.UniqueConstraint(fields=["shop", "bit"], name="served_product_bit_unique_bit"),
        ]


class AttributedEvent(models.Model):
    """An event tied to the served list it came from, with that list's placement, experiment
    arm and model versions, the served item's position and promotions, and (purchases)
    the revenue ``price x quantity``. Deleted with its event (shopper erasure)."""

    event = models.OneToOneField(
        Event, on_delete=models.CASCADE, primary_key=True, db_constraint=False, related_name="+"
    )
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(max_length=16)
    ts = models.DateTimeField()
    shopper_id = models.BigIntegerField()
    product_id = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=AttributionKind.choices)
    request_id = models.UUIDField()
    via_event_id = models.BigIntegerField(null=True, blank=True)  # the click a window attribution rests on
    placement_slug = models.CharField(max_length=64)
    experiment_id = models.BigIntegerField(default=0)
    experiment_version = models.PositiveIntegerField(default=0)
    variant = models.CharField(max_length=64, blank=True, default="")
    unit_hash = models.CharField(max_length=128, blank=True, default="")
    position = models.PositiveSmallIntegerField(null=True, blank=True)  # None: not among the served items
    promotion_ids = models.JSONField(default=list, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    revenue = models.DecimalField(**MONEY)

    class Meta:
        indexes = [models.Index(fields=["shop", "ts"], name="attributed_event_shop_ts")]


class Counts(models.Model):
    """What every rollup row counts. Requests and item slots come from served lists (by
    ``served_at``); the rest from attributed events (by the event's ``ts``)."""

    requests = models.BigIntegerField(default=0)  # served lists
    item_slots = models.BigIntegerField(default=0)  # items in them
    new_item_slots = models.BigIntegerField(default=0)  # of which products new at the time
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    add_to_carts = models.BigIntegerField(default=0)
    purchases = models.BigIntegerField(default=0)
    revenue = models.DecimalField(**MONEY)

    class Meta:
        abstract = True


class Bucketed(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField()

    class Meta:
        abstract = True


class PlacementRollup(Bucketed, Counts):
    """Per placement and experiment arm (0 / 0 / "" outside experiments), with the set of
    products served (``items_served``, a compressed bitmap) for coverage."""

    placement_slug = models.CharField(max_length=64)
    experiment_id = models.BigIntegerField(default=0)
    experiment_version = models.PositiveIntegerField(default=0)
    variant = models.CharField(max_length=64, blank=True, default="")
    distinct_items = models.IntegerField(default=0)
    items_served = models.BinaryField(default=b"")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "period", "start", "placement_slug", "experiment_id", "experiment_version", "variant"],
                name="placement_rollup_unique",
            )
        ]


class PromotionRollup(Bucketed, Counts):
    """Per promotion, placement and arm: the slots its items took and what they earned.
    ``requests``: lists with at least one item of the promotion."""

    placement_slug = models.CharField(max_length=64)
    experiment_id = models.BigIntegerField(default=0)
    experiment_version = models.PositiveIntegerField(default=0)
    variant = models.CharField(max_length=64, blank=True, default="")
    promotion_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "shop",
                    "period",
                    "start",
                    "placement_slug",
                    "experiment_id",
                    "experiment_version",
                    "variant",
                    "promotion_id",
                ],
                name="promotion_rollup_unique",
            )
        ]


class PromotedItemRollup(Bucketed, Counts):
    """Per promoted product: how often it was served (``item_slots``), seen and clicked."""

    placement_slug = models.CharField(max_length=64)
    experiment_id = models.BigIntegerField(default=0)
    experiment_version = models.PositiveIntegerField(default=0)
    variant = models.CharField(max_length=64, blank=True, default="")
    promotion_id = models.BigIntegerField()
    product_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "shop",
                    "period",
                    "start",
                    "placement_slug",
                    "experiment_id",
                    "experiment_version",
                    "variant",
                    "promotion_id",
                    "product_id",
                ],
                name="promoted_item_rollup_unique",
            )
        ]


class ModelVersionRollup(Bucketed, Counts):
    """Per model version (each kind a list's items came from counts the list once)."""

    placement_slug = models.CharField(max_length=64)
    model_kind = models.CharField(max_length=32)
    model_version_id = models.BigIntegerField()
    distinct_items = models.IntegerField(default=0)
    items_served = models.BinaryField(default=b"")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "period", "start", "placement_slug", "model_kind", "model_version_id"],
                name="model_version_rollup_unique",
            )
        ]


class UnitCounts(models.Model):
    exposures = models.BigIntegerField(default=0)  # served lists
    impressions = models.BigIntegerField(default=0)
    clicks = models.BigIntegerField(default=0)
    add_to_carts = models.BigIntegerField(default=0)
    purchases = models.BigIntegerField(default=0)
    revenue = models.DecimalField(**MONEY)

    class Meta:
        abstract = True


class ExperimentUnitHour(UnitCounts):
    """One unit of one experiment version in one hour (the grain that makes per-unit totals
    recomputable hour by hour)."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    start = models.DateTimeField()
    experiment_id = models.BigIntegerField()
    experiment_version = models.PositiveIntegerField()
    unit_hash = models.CharField(max_length=128)
    variant = models.CharField(max_length=64)
    shopper_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "start", "experiment_id", "experiment_version", "unit_hash", "variant"],
                name="experiment_unit_hour_unique",
            )
        ]
        indexes = [
            models.Index(fields=["experiment_id", "experiment_version", "unit_hash"], name="experiment_unit_hour_unit")
        ]


class ExperimentUnit(UnitCounts):
    """One unit of one experiment version, totals over all hours.

    ``variants_seen`` counts the variants the unit's served lists named: 1 for every unit,
    since assignment is a pure function of (salt, version, unit). A unit seen in more than
    one variant (a logging fault) has ``variant == ""`` and is left out of the analysis.
    ``pre_revenue``: the shopper's purchase revenue in the days before the version started
    (CUPED covariate; 0 for units without a known shopper), fixed when the unit first
    appears.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    experiment_id = models.BigIntegerField()
    experiment_version = models.PositiveIntegerField()
    unit_hash = models.CharField(max_length=128)
    variant = models.CharField(max_length=64, blank=True)
    variants_seen = models.PositiveSmallIntegerField(default=1)
    shopper_id = models.BigIntegerField(null=True, blank=True)
    first_hour = models.DateTimeField()
    pre_revenue = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment_id", "experiment_version", "unit_hash"], name="experiment_unit_unique"
            )
        ]
        indexes = [
            models.Index(fields=["experiment_id", "experiment_version", "variant"], name="experiment_unit_variant")
        ]


class ExperimentLook(models.Model):
    """The sequential (mSPRT) state of one experiment version: tau² per metric, fixed at the
    first analysis, and the last always-valid result per (variant, metric), passed back
    into the next analysis. ``fingerprint`` identifies the data of the last look, so that
    an analysis of unchanged data is not counted as a new look. ``summary``: the SRM
    verdict and units per variant of the last look, for lists and the dashboard."""

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+", db_index=False)
    experiment_id = models.BigIntegerField()
    experiment_version = models.PositiveIntegerField()
    looks = models.PositiveIntegerField(default=0)
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    tau_squared = models.JSONField(default=dict, blank=True)
    always_valid = models.JSONField(default=dict, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    analysed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment_id", "experiment_version"], name="experiment_look_unique")
        ]
