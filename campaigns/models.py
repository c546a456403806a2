"""Merchandising: placements, strategies, promotions, seasonal boosts, experiments.

Every row belongs to a Shop. Services (campaigns.services) are the only writers; each
write bumps the shop's ``CampaignsVersion`` in the same transaction, which is what
serving processes poll to reload their cached campaign state (campaigns.state).
"""

import secrets
import zoneinfo
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from campaigns.schedule import DailyHours, Schedule, SeasonalWindow, YearlyWindow, parse_month_day, schedule_phase
from campaigns.strategy import StrategyConfig, StrategyError
from campaigns.targets import Target, TargetError
from catalog.models import Category, Shop

MAX_SLOT = 50
MAX_PROMOTION_FACTOR = 100.0
MAX_SEASONAL_FACTOR = 10.0


class CampaignsVersion(models.Model):
    """A per-shop counter bumped by every campaigns change; serving polls it (one indexed read)."""

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, primary_key=True, related_name="campaigns_version")
    version = models.BigIntegerField(default=0)


class Strategy(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="strategies")
    name = models.CharField(max_length=200)
    config = models.JSONField(blank=True)  # StrategyConfig.to_dict(); validated by clean()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "name"], name="strategy_unique_name_per_shop")]
        verbose_name_plural = "strategies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            self.config = StrategyConfig.from_dict(self.config).to_dict()
        except StrategyError as error:
            raise ValidationError({"config": error.messages()}) from None

    @property
    def strategy(self) -> StrategyConfig:
        return StrategyConfig.from_dict(self.config)


class PlacementKind(models.TextChoices):
    HOME = "home"
    PRODUCT = "product"
    CART = "cart"
    CATEGORY = "category"
    EMAIL = "email"


class Placement(models.Model):
    """A place where recommendations are shown, found by ``slug`` (the API's ``placement``).

    ``promotions_enabled`` and ``model_version_id`` are the placement's defaults for what
    an experiment variant may override; promoting a winner copies the variant's values here.
    ``model_version_id`` names a recommender ModelVersion (campaigns cannot import
    recommender): None, or an id that no longer exists, means the shop's active model.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="placements")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=PlacementKind.choices)
    default_strategy = models.ForeignKey(Strategy, on_delete=models.PROTECT, related_name="placements")
    promotions_enabled = models.BooleanField(default=True)
    model_version_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "slug"], name="placement_unique_slug_per_shop")]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.default_strategy_id is not None and self.default_strategy.shop_id != self.shop_id:
            raise ValidationError({"default_strategy": "must be a strategy of the same shop"})


def _month_day_validator(value: str) -> None:
    try:
        parse_month_day(value)
    except ValueError as error:
        raise ValidationError(str(error)) from None


def _yearly(first: str, last: str) -> YearlyWindow | None:
    if not first or not last:
        return None
    return YearlyWindow(first=parse_month_day(first), last=parse_month_day(last))


def _whole_minute(value: datetime | None) -> bool:
    return value is None or (value.second == 0 and value.microsecond == 0)


class Promotion(models.Model):
    """A merchandising rule: a target, an action, a scope and a schedule.

    ``status`` is what a merchandiser set (draft, published, paused). Whether a published
    promotion is scheduled, live or ended depends on the instant and is derived from its
    schedule (``lifecycle``), so it can never go stale and time travel needs no rewrite.
    """

    class Action(models.TextChoices):
        PIN = "pin"
        BOOST = "boost"
        BURY = "bury"
        EXCLUDE = "exclude"
        RESTRICT = "restrict"

    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        PAUSED = "paused"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="promotions")
    name = models.CharField(max_length=200)
    target = models.JSONField(blank=True)  # Target.to_dict(); validated by clean()
    action = models.CharField(max_length=16, choices=Action.choices)
    slot = models.PositiveSmallIntegerField(null=True, blank=True)  # pin only, 1-based
    factor = models.FloatField(null=True, blank=True)  # boost only
    all_placements = models.BooleanField(default=True)
    placements = models.ManyToManyField(Placement, blank=True, related_name="promotions")
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    yearly_from = models.CharField(max_length=5, blank=True, default="", validators=[_month_day_validator])
    yearly_until = models.CharField(max_length=5, blank=True, default="", validators=[_month_day_validator])
    weekdays = models.JSONField(default=list, blank=True)  # 0 = Monday; empty: every day
    daily_from = models.TimeField(null=True, blank=True)
    daily_until = models.TimeField(null=True, blank=True)
    priority = models.IntegerField(default=0, validators=[MinValueValidator(-1000), MaxValueValidator(1000)])
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "status"], name="promotion_shop_status")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problems: dict[str, list[str]] = {}
        try:
            self.target = Target.from_dict(self.target).to_dict()
        except TargetError as error:
            problems["target"] = error.messages()
        if self.action == self.Action.PIN:
            if self.slot is None or not 1 <= self.slot <= MAX_SLOT:
                problems["slot"] = [f"a pin needs a slot from 1 to {MAX_SLOT}"]
        elif self.slot is not None:
            problems["slot"] = ["only a pin has a slot"]
        if self.action == self.Action.BOOST:
            if self.factor is None or not 0 < self.factor <= MAX_PROMOTION_FACTOR:
                problems["factor"] = [f"a boost needs a factor above 0 and at most {MAX_PROMOTION_FACTOR:g}"]
        elif self.factor is not None:
            problems["factor"] = ["only a boost has a factor"]
        problems.update(_schedule_problems(self))
        if problems:
            raise ValidationError(problems)

    @property
    def target_spec(self) -> Target:
        return Target.from_dict(self.target)

    @property
    def schedule(self) -> Schedule:
        hours = None
        if self.daily_from is not None and self.daily_until is not None:
            hours = DailyHours(start=self.daily_from, end=self.daily_until)
        return Schedule(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            yearly=_yearly(self.yearly_from, self.yearly_until),
            weekdays=frozenset(self.weekdays or ()),
            hours=hours,
        )

    def lifecycle(self, at: datetime) -> str:
        """draft, paused, or for a published promotion: scheduled, live or ended at ``at``."""
        if self.status != self.Status.PUBLISHED:
            return self.status
        return schedule_phase(self.schedule, at, zoneinfo.ZoneInfo(self.shop.timezone))


def _schedule_problems(promotion: Promotion) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for name in ("starts_at", "ends_at"):
        if not _whole_minute(getattr(promotion, name)):
            problems[name] = ["must be a whole minute (schedules have minute resolution)"]
    if promotion.starts_at and promotion.ends_at and promotion.starts_at >= promotion.ends_at:
        problems["ends_at"] = ["must be after starts_at"]
    if bool(promotion.yearly_from) != bool(promotion.yearly_until):
        problems["yearly_until"] = ["a yearly window needs both yearly_from and yearly_until"]
    weekdays = promotion.weekdays
    if not isinstance(weekdays, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in weekdays):
        problems["weekdays"] = ["must be a list of weekday numbers, 0 = Monday to 6 = Sunday"]
    elif any(not 0 <= d <= 6 for d in weekdays) or len(set(weekdays)) != len(weekdays):
        problems["weekdays"] = ["must be distinct weekday numbers from 0 (Monday) to 6 (Sunday)"]
    else:
        promotion.weekdays = sorted(weekdays)
    if (promotion.daily_from is None) != (promotion.daily_until is None):
        problems["daily_until"] = ["a daily window needs both daily_from and daily_until"]
    elif promotion.daily_from is not None and promotion.daily_from == promotion.daily_until:
        problems["daily_until"] = ["must differ from daily_from"]
    for name in ("daily_from", "daily_until"):
        value = getattr(promotion, name)
        if value is not None and (value.second or value.microsecond):
            problems[name] = ["must be a whole minute"]
    return problems


class SeasonalBoost(models.Model):
    """Boost categories or tags in a calendar window, with a linear ramp up and down.

    An item matches when it is in one of ``categories`` (with descendants) or carries one
    of ``tags``. The window is one-off (``first_day``..``last_day``) or yearly
    (``yearly_from``..``yearly_until``, MM-DD), days included, in the shop's time zone.
    """

    class Recurrence(models.TextChoices):
        ONCE = "once"
        YEARLY = "yearly"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="seasonal_boosts")
    name = models.CharField(max_length=200)
    categories = models.JSONField(default=list, blank=True)  # category paths
    tags = models.JSONField(default=list, blank=True)
    factor = models.FloatField()
    recurrence = models.CharField(max_length=8, choices=Recurrence.choices, default=Recurrence.YEARLY)
    first_day = models.DateField(null=True, blank=True)
    last_day = models.DateField(null=True, blank=True)
    yearly_from = models.CharField(max_length=5, blank=True, default="", validators=[_month_day_validator])
    yearly_until = models.CharField(max_length=5, blank=True, default="", validators=[_month_day_validator])
    ramp_up_days = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(90)])
    ramp_down_days = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(90)])
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        problems: dict[str, list[str]] = {}
        for name in ("categories", "tags"):
            values = getattr(self, name)
            if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
                problems[name] = ["must be a list of non-empty strings"]
            elif len(values) > 200:
                problems[name] = ["at most 200 values"]
            else:
                setattr(self, name, list(dict.fromkeys(v.strip() for v in values)))
        if not problems and not self.categories and not self.tags:
            problems["categories"] = ["a seasonal boost needs at least one category or tag"]
        if self.factor is None or not 0 < self.factor <= MAX_SEASONAL_FACTOR:
            problems["factor"] = [f"must be above 0 and at most {MAX_SEASONAL_FACTOR:g}"]
        if self.recurrence == self.Recurrence.ONCE:
            if self.first_day is None or self.last_day is None:
                problems["first_day"] = ["a one-off window needs first_day and last_day"]
            elif self.first_day > self.last_day:
                problems["last_day"] = ["must be on or after first_day"]
            if self.yearly_from or self.yearly_until:
                problems["yearly_from"] = ["only a yearly window has yearly_from and yearly_until"]
        else:
            if not self.yearly_from or not self.yearly_until:
                problems["yearly_from"] = ["a yearly window needs yearly_from and yearly_until (MM-DD)"]
            if self.first_day is not None or self.last_day is not None:
                problems["first_day"] = ["only a one-off window has first_day and last_day"]
        if problems:
            raise ValidationError(problems)

    @property
    def window(self) -> SeasonalWindow:
        if self.recurrence == self.Recurrence.YEARLY:
            return SeasonalWindow(yearly=_yearly(self.yearly_from, self.yearly_until))
        return SeasonalWindow(first_day=self.first_day, last_day=self.last_day)


class SeasonalSuggestion(models.Model):
    """A boost the seasonal-lift task proposes from last year's events, for a merchandiser
    to accept (which creates a SeasonalBoost) or dismiss. One per category and window."""

    class Status(models.TextChoices):
        SUGGESTED = "suggested"
        ACCEPTED = "accepted"
        DISMISSED = "dismissed"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="seasonal_suggestions")
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    first_day = models.DateField()
    last_day = models.DateField()
    lift = models.FloatField()  # last year's share of the category in the window / its baseline share
    window_volume = models.FloatField()  # last year's weighted add-to-cart + purchase volume in the window
    suggested_factor = models.FloatField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SUGGESTED)
    boost = models.ForeignKey(SeasonalBoost, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "category", "first_day"], name="seasonal_suggestion_unique_per_window"
            )
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.first_day}..{self.last_day} x{self.lift:.2f}"


def new_experiment_salt() -> str:
    return secrets.token_hex(16)


class Experiment(models.Model):
    """An A/B/n test on one placement.

    ``salt`` and ``version`` feed the assignment hash; ``version`` moves when the
    allocation (or anything a unit is served) changes while running, so data of
    different versions is never pooled (see ExperimentVersion). At most one experiment
    per placement is running (database constraint) or scheduled (service check).
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"
        RUNNING = "running"
        STOPPED = "stopped"
        PROMOTED = "promoted"

    class Metric(models.TextChoices):
        CTR = "ctr"
        ADD_TO_CART_RATE = "add_to_cart_rate"
        CONVERSION_RATE = "conversion_rate"
        REVENUE_PER_UNIT = "revenue_per_unit"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="experiments")
    placement = models.ForeignKey(Placement, on_delete=models.PROTECT, related_name="experiments")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    salt = models.CharField(max_length=32, default=new_experiment_salt, editable=False)
    version = models.PositiveIntegerField(default=1)
    holdout_percent = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(50)])
    primary_metric = models.CharField(max_length=32, choices=Metric.choices, default=Metric.CONVERSION_RATE)
    starts_at = models.DateTimeField(null=True, blank=True)  # planned (scheduled) start
    stops_at = models.DateTimeField(null=True, blank=True)  # planned stop
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    winner = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["placement"],
                condition=models.Q(status="running"),
                name="experiment_one_running_per_placement",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.placement_id is not None and self.placement.shop_id != self.shop_id:
            raise ValidationError({"placement": "must be a placement of the same shop"})
        if self.starts_at and self.stops_at and self.starts_at >= self.stops_at:
            raise ValidationError({"stops_at": "must be after starts_at"})


HOLDOUT = "holdout"  # the variant name logged for held-out units; reserved


class ExperimentVariant(models.Model):
    """One arm. Overrides (None / True: the placement's default): the strategy, whether
    promotions and seasonal boosts apply, and the recommender model version."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    name = models.SlugField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    is_control = models.BooleanField(default=False)
    allocation = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(100)])
    strategy = models.ForeignKey(
        Strategy, null=True, blank=True, on_delete=models.PROTECT, related_name="experiment_variants"
    )
    promotions_on = models.BooleanField(default=True)
    model_version_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "name"], name="variant_unique_name")]
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class ExperimentVersion(models.Model):
    """One stretch of an experiment with a fixed allocation. Analyses never pool versions."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    allocation = models.JSONField()  # {"holdout_percent": int, "variants": [{name, allocation, ...}]}
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="experiment_version_unique")]
        ordering = ["number"]
