"""The model kinds a shop trains, each an algorithm of recommender.algorithms with a base configuration.

A kind is what the registry, training runs and serving name ("als", "also_viewed", ...).
Two kinds may share an algorithm class with different settings (co-occurrence as
"also viewed" and as "bought together"). The shop's merchandiser settings are applied
on top of each kind's defaults: ``event_weights`` everywhere an algorithm has it, and
``decay_half_life_days`` as the training-time decay of behaviour where the kind says
so (trending keeps its own, shorter half-life: it measures what is hot, not how fast
a shopper's taste ages). The implicit ALS solver (parallel over shoppers) gets
TRAINING_THREADS: a training worker runs one run at a time and may use the machine's
cores. The session model keeps one torch thread: its small matrix products do not
scale with threads, and on a busy machine extra threads make it several times slower.
"""

import typing
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from catalog.models import Shop
from recommender.algorithms.base import Algorithm, AlgorithmConfig
from recommender.algorithms.registry import algorithm_class

# The metric a new version is compared on before it replaces the active one.
DEFAULT_PRIMARY_METRIC = "ndcg_at_10"


@dataclass(frozen=True)
class KindSpec:
    name: str
    algorithm: str  # Algorithm.kind in recommender.algorithms.registry
    # Settings of the kind on top of the algorithm's defaults (before the shop's and the run's).
    base_config: dict[str, Any] = field(default_factory=dict)
    # Names of config fields (possibly nested, "als.half_life_days") that take the shop's half-life.
    shop_half_life_fields: tuple[str, ...] = ()
    # ... and that take TRAINING_THREADS.
    thread_fields: tuple[str, ...] = ()
    needs_text_embeddings: bool = False
    primary_metric: str = DEFAULT_PRIMARY_METRIC

    @property
    def algorithm_class(self) -> type[Algorithm[Any]]:
        return algorithm_class(self.algorithm)


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec("trending", "trending"),
        KindSpec("also_viewed", "cooccurrence", base_config={"relation": "also_viewed"}),
        KindSpec("bought_together", "cooccurrence", base_config={"relation": "bought_together"}),
        KindSpec("item_knn", "item_knn", shop_half_life_fields=("half_life_days",)),
        KindSpec("als", "als", shop_half_life_fields=("half_life_days",), thread_fields=("num_threads",)),
        KindSpec("text_similarity", "text_similarity", needs_text_embeddings=True),
        KindSpec(
            "cold_start",
            "cold_start",
            shop_half_life_fields=("als.half_life_days",),
            thread_fields=("als.num_threads",),
            needs_text_embeddings=True,
        ),
        KindSpec("sasrec", "sasrec"),
    )
}


class UnknownKind(ValueError):
    pass


def kind_spec(name: str) -> KindSpec:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(f"unknown model kind {name!r}; known: {', '.join(KINDS)}") from None


def _set_everywhere(values: dict[str, Any], config_class: type[AlgorithmConfig], field_name: str, value: Any) -> None:
    """Set ``field_name`` in ``values`` and in every nested configuration that has it."""
    for name, hint in typing.get_type_hints(config_class).items():
        if name == field_name:
            values[name] = dict(value) if isinstance(value, dict) else value
        elif isinstance(hint, type) and issubclass(hint, AlgorithmConfig):
            _set_everywhere(values[name], hint, field_name, value)


def _set_path(values: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for name in parents:
        values = values[name]
    values[last] = value


def _merge(values: dict[str, Any], overrides: dict[str, Any]) -> None:
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(name), dict) and name != "event_weights":
            _merge(values[name], value)
        else:
            values[name] = value


def kind_config(spec: KindSpec, shop: Shop, overrides: dict[str, Any] | None = None) -> AlgorithmConfig:
    """The typed configuration a run of this kind trains with: the algorithm's defaults,
    then the kind's base settings, then the shop's event weights and half-life and
    TRAINING_THREADS, then the run's overrides (nested dicts merge). Unknown settings raise
    ValueError."""
    config_class = spec.algorithm_class.config_class
    values = config_class().to_dict()
    _merge(values, spec.base_config)
    _set_everywhere(values, config_class, "event_weights", dict(shop.event_weights))
    for dotted in spec.shop_half_life_fields:
        _set_path(values, dotted, float(shop.decay_half_life_days))
    for dotted in spec.thread_fields:
        _set_path(values, dotted, settings.TRAINING_THREADS)
    _merge(values, overrides or {})
    return config_class.from_dict(values)


def kinds_for_shop(*, has_text_embeddings: bool) -> list[str]:
    """The kinds a shop can train: all, less those that need text embeddings it lacks."""
    return [name for name, spec in KINDS.items() if has_text_embeddings or not spec.needs_text_embeddings]
