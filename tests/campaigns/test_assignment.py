"""Experiment assignment: deterministic across processes, evenly split, versioned;
placement resolution with and without an experiment."""

import hashlib
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from campaigns import services
from campaigns.assignment import (
    UnknownPlacement,
    assignment_bucket,
    experiment_assign,
    placement_resolve,
)
from campaigns.services import VariantSpec
from campaigns.state import ExperimentState, VariantState, state_load
from campaigns.strategy import StrategyConfig
from tests.campaigns.conftest import ACTOR
from tests.factories import StrategyFactory

UNITS = 1_000_000
REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def variant(name: str, allocation: int, control: bool = False) -> VariantState:
    return VariantState(name, control, allocation, None, None, True, None)


FIFTY_FIFTY = ExperimentState(
    id=1,
    name="50/50",
    placement_id=1,
    salt="5f1a9c",
    version=1,
    holdout_percent=0,
    variants=(variant("control", 50, True), variant("treatment", 50)),
    starts_at=T0,
    stops_at=None,
)

# The same computation, run by a fresh interpreter: a digest of the variant of every unit.
DIGEST_SCRIPT = f"""
import hashlib, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
import django
django.setup()
from datetime import UTC, datetime
from campaigns.assignment import experiment_assign
from campaigns.state import ExperimentState, VariantState
variants = (VariantState("control", True, 50, None, None, True, None),
            VariantState("treatment", False, 50, None, None, True, None))
experiment = ExperimentState(1, "50/50", 1, "5f1a9c", 1, 0, variants, datetime(2026, 1, 1, tzinfo=UTC), None)
digest = hashlib.sha256()
for i in range({UNITS}):
    digest.update(experiment_assign(experiment, f"shopper-{{i}}").name.encode() + b"\\n")
print(digest.hexdigest())
"""


@pytest.fixture(scope="module")
def million_assignments() -> tuple[Counter[str], str, str]:
    """Variant counts and digest of 10^6 units here, and the digest of another process
    (started first so both run at once)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "DJANGO_SETTINGS_MODULE": "recsite.settings"}
    other = subprocess.Popen(
        [sys.executable, "-c", DIGEST_SCRIPT], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    digest = hashlib.sha256()
    counts: Counter[str] = Counter()
    for i in range(UNITS):
        name = experiment_assign(FIFTY_FIFTY, f"shopper-{i}").name
        counts[name] += 1
        digest.update(name.encode() + b"\n")
    out, err = other.communicate(timeout=120)
    assert other.returncode == 0, err.decode()
    return counts, digest.hexdigest(), out.decode().strip()


@pytest.mark.slow
def test_assignment_is_identical_for_a_million_units_in_another_process(million_assignments):
    _, here, there = million_assignments
    assert len(here) == 64
    assert here == there


@pytest.mark.slow
def test_a_million_units_split_fifty_fifty_within_two_tenths_of_a_point(million_assignments):
    counts, _, _ = million_assignments
    assert sum(counts.values()) == UNITS
    assert abs(counts["control"] / UNITS - 0.5) <= 0.002
    assert abs(counts["treatment"] / UNITS - 0.5) <= 0.002


def test_bucket_is_a_pure_function_of_salt_version_and_unit():
    assert assignment_bucket("s", 1, "u-1") == assignment_bucket("s", 1, "u-1")
    buckets = [assignment_bucket("s", version, f"u-{i}") for version in (1, 2) for i in range(1000)]
    assert all(0 <= b < 10_000 for b in buckets)
    assert buckets[:1000] != buckets[1000:]  # another version re-randomises


def test_holdout_and_uneven_allocation_follow_their_shares():
    experiment = ExperimentState(
        2, "abc", 1, "x", 1, 10, (variant("a", 20, True), variant("b", 30), variant("c", 50)), T0, None
    )
    counts = Counter(
        (v.name if v is not None else "holdout")
        for v in (experiment_assign(experiment, f"u{i}") for i in range(100_000))
    )
    # 10 % held out; the other 90 % split 20/30/50
    expected = {"holdout": 0.10, "a": 0.18, "b": 0.27, "c": 0.45}
    assert set(counts) == set(expected)
    for name, share in expected.items():
        assert abs(counts[name] / 100_000 - share) <= 0.006, name


def test_a_new_version_reassigns_about_half_of_the_units():
    second = ExperimentState(**{**FIFTY_FIFTY.__dict__, "version": 2})
    same = sum(experiment_assign(FIFTY_FIFTY, f"u{i}") == experiment_assign(second, f"u{i}") for i in range(20_000))
    assert 9_400 <= same <= 10_600  # independent draws agree half the time, not always


# --- placement_resolve ---------------------------------------------------------------------------------------


@pytest.fixture
def experiment(shop, placements):
    """A running experiment on "home": control (default) vs "fresh" (another strategy,
    no promotions, model version 7), 20 % held out."""
    fresh = StrategyFactory(shop=shop, name="Fresh", config={"sources": {"new_arrivals": 1.0}, "size": 4})
    created = services.experiment_create(
        shop=shop,
        actor=ACTOR,
        fields={"name": "Fresh home", "placement": placements["home"], "holdout_percent": 20},
        variants=[
            VariantSpec(name="control", allocation=50, is_control=True),
            VariantSpec(name="fresh", allocation=50, strategy=fresh, promotions_on=False, model_version_id=7),
        ],
    )
    return services.experiment_start(experiment=created, actor=ACTOR, now=T0)


def test_without_an_experiment_the_placement_default_is_served(shop, placements):
    resolution = placement_resolve(state_load(shop.pk), "cart", "shopper-1", T0)
    assert resolution.strategy == placements["cart"].default_strategy.strategy
    assert (resolution.experiment_id, resolution.variant, resolution.promotions_apply) == (None, None, True)
    assert resolution.model_version_id is None


def test_unknown_placement_raises(shop, placements):
    with pytest.raises(UnknownPlacement):
        placement_resolve(state_load(shop.pk), "nope", "shopper-1", T0)


def test_units_get_their_variant_overrides_and_exposure(shop, placements, experiment):
    state = state_load(shop.pk)
    seen = {}
    for i in range(200):
        resolution = placement_resolve(state, "home", f"shopper-{i}", T0 + timedelta(days=1))
        seen.setdefault(resolution.variant, resolution)
    assert set(seen) == {"control", "fresh", "holdout"}
    fresh, control, holdout = seen["fresh"], seen["control"], seen["holdout"]
    assert fresh.strategy == StrategyConfig.from_dict({"sources": {"new_arrivals": 1.0}, "size": 4})
    assert (fresh.promotions_apply, fresh.model_version_id) == (False, 7)
    assert (fresh.experiment_id, fresh.experiment_version) == (experiment.pk, 1)
    default = placements["home"].default_strategy.strategy
    assert (control.strategy, control.promotions_apply, control.model_version_id) == (default, True, None)
    # Held-out units get the placement's default, logged as "holdout"
    assert (holdout.strategy, holdout.promotions_apply, holdout.experiment_id) == (default, True, experiment.pk)


def test_the_same_unit_gets_the_same_variant_on_every_call_and_reload(shop, placements, experiment):
    first = [placement_resolve(state_load(shop.pk), "home", f"s{i}", T0).variant for i in range(50)]
    again = [placement_resolve(state_load(shop.pk), "home", f"s{i}", T0).variant for i in range(50)]
    assert first == again


def test_anonymous_requests_are_not_enrolled(shop, placements, experiment):
    resolution = placement_resolve(state_load(shop.pk), "home", None, T0 + timedelta(days=1))
    assert (resolution.experiment_id, resolution.variant) == (None, None)


def test_a_stopped_experiment_is_no_longer_served(shop, placements, experiment):
    stopped = services.experiment_stop(experiment=experiment, actor=ACTOR, now=T0 + timedelta(days=3))
    assert stopped.status == "stopped"
    # A stopped experiment is no longer in the state at all
    assert placement_resolve(state_load(shop.pk), "home", "s1", T0 + timedelta(days=1)).experiment_id is None


def test_scheduled_experiment_starts_serving_at_its_start_instant(shop, placements):
    created = services.experiment_create(
        shop=shop,
        actor=ACTOR,
        fields={"name": "Later", "placement": placements["product"]},
        variants=[VariantSpec("a", 50, True), VariantSpec("b", 50)],
    )
    starts = datetime(2030, 11, 29, 8, tzinfo=UTC)
    services.experiment_schedule(experiment=created, actor=ACTOR, starts_at=starts, stops_at=starts + timedelta(days=7))
    state = state_load(shop.pk)
    assert placement_resolve(state, "product", "s1", starts - timedelta(seconds=1)).experiment_id is None
    assert placement_resolve(state, "product", "s1", starts).experiment_id == created.pk
    assert placement_resolve(state, "product", "s1", starts + timedelta(days=7)).experiment_id is None
