"""Which experience a unit (shopper or session) gets on a placement at an instant.

Assignment is a pure function of (experiment salt, experiment version, unit id): the
first 8 bytes of BLAKE2b of ``"{salt}:{version}:{unit}"`` modulo 10 000 give a bucket,
identical in every process, on every machine and after restarts (no randomness, no
process state, no Python ``hash``). A new version re-randomises units, which is why the
data of different versions is never pooled.

Buckets ``[0, holdout_percent * 100)`` are held out; the rest are split among the
variants in their order, by their allocation percents (which sum to 100). A held-out
unit gets the placement's default experience - its default strategy, its promotions
setting and its model version, exactly as without the experiment - and is logged as
variant ``"holdout"``; it is the control group of "experiment vs no experiment".
"""

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from campaigns.models import HOLDOUT
from campaigns.state import CampaignState, ExperimentState, PlacementState, VariantState
from campaigns.strategy import StrategyConfig

BUCKETS = 10_000


class UnknownPlacement(LookupError):
    """The shop has no placement with this slug (the API answers 404)."""


@dataclass(frozen=True)
class Resolution:
    """What to serve on a placement for a unit: the strategy, whether promotions and
    seasonal boosts apply, the model version (None: the active one), and the experiment
    exposure to log (all None when no experiment runs or the unit is anonymous)."""

    placement: PlacementState
    strategy_id: int
    strategy: StrategyConfig
    promotions_apply: bool
    model_version_id: int | None
    experiment_id: int | None = None
    experiment_version: int | None = None
    variant: str | None = None


def assignment_bucket(salt: str, version: int, unit_id: str) -> int:
    """The unit's bucket in ``[0, 10000)`` for this experiment version."""
    digest = hashlib.blake2b(f"{salt}:{version}:{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def experiment_assign(experiment: ExperimentState, unit_id: str) -> VariantState | None:
    """The unit's variant, or None when it is held out."""
    bucket = assignment_bucket(experiment.salt, experiment.version, unit_id)
    held_out = experiment.holdout_percent * (BUCKETS // 100)
    if bucket < held_out:
        return None
    position, span = bucket - held_out, BUCKETS - held_out
    cumulative = 0
    for variant in experiment.variants:
        cumulative += variant.allocation
        if position < span * cumulative // 100:
            return variant
    return experiment.variants[-1]  # unreachable while allocations sum to 100


def running_experiment(state: CampaignState, placement: PlacementState, at: datetime) -> ExperimentState | None:
    for experiment in state.experiments.get(placement.id, ()):
        if experiment.running_at(at):
            return experiment
    return None


def placement_resolve(state: CampaignState, placement_slug: str, unit_id: str | None, at: datetime) -> Resolution:
    """Resolve a placement for a unit at ``at``. Raises UnknownPlacement.

    ``unit_id`` is the shopper id, or the session id for an anonymous visitor; None (or
    empty) means no stable unit, which is served the default and is not enrolled.
    """
    placement = state.placements.get(placement_slug)
    if placement is None:
        raise UnknownPlacement(placement_slug)
    default = Resolution(
        placement=placement,
        strategy_id=placement.strategy_id,
        strategy=placement.strategy,
        promotions_apply=placement.promotions_enabled,
        model_version_id=placement.model_version_id,
    )
    experiment = running_experiment(state, placement, at) if unit_id else None
    if experiment is None or not unit_id:
        return default
    variant = experiment_assign(experiment, unit_id)
    exposed = replace(default, experiment_id=experiment.id, experiment_version=experiment.version)
    if variant is None:
        return replace(exposed, variant=HOLDOUT)
    return replace(
        exposed,
        strategy_id=variant.strategy_id if variant.strategy_id is not None else placement.strategy_id,
        strategy=variant.strategy if variant.strategy is not None else placement.strategy,
        promotions_apply=variant.promotions_on,
        model_version_id=variant.model_version_id
        if variant.model_version_id is not None
        else placement.model_version_id,
        variant=variant.name,
    )
