"""Cold-start hybrid: ALS for items with behaviour, a calibrated estimate for items without.

Items with events (at least ``min_events_for_own_vector``) keep their own ALS factor
vector and are ranked exactly as :class:`~recommender.algorithms.als.Als` ranks them.
Items without events ("cold": new products) are scored from what a shop knows about a
new product, on the same scale as the warm items:

- (a) its text embedding projected into the ALS factor space (``project_factors``),
  dotted with the shopper's folded-in vector. ``text_map`` says how: ``"ridge"``, a
  ridge regression fitted on the warm items; ``"knn"``, the similarity-weighted mean of
  the ALS vectors of its ``knn_neighbours`` nearest warm items by text cosine (weights
  ``max(cos, 0) ** knn_power``), so a sequel or a product of the same line borrows the
  vectors of its predecessors;
- (c) priors: the recent popularity of its category (log ratio to the catalog mean),
  the popularity that items with similar text have (log popularity mapped from the
  text by the same ``text_map``: ridge, or the weighted mean over the nearest warm
  items), and its newness (``ItemFeatures.created_ts``, halved every
  ``newness_half_life_days``, centred on the warm items so that a catalog whose items all
  share one creation date gets no newness signal);
- (d) an exploration boost, the same for every cold item (see below).

The combination is a conditional logit (one softmax over the catalog per shopper)::

    warm item j:  warm_weight * (u . y_j) / |u|
    cold item j:  projection_weight * (u . p_j) / |u|
                  + category_popularity_weight * category_popularity_j
                  + text_popularity_weight * text_popularity_j
                  + newness_weight * newness_j + cold_bias + exploration_boost

with ``u`` the shopper's ALS vector folded in from the query over the items' factor
vectors (own for warm items, projected ``p_j`` for cold ones), ``y_j`` a warm item's own
factors. The weights are defaults chosen by maximum likelihood on the MovieLens
validation split, inside the training period (``python -m
recommender.bench.tune_cold_start``). Dividing by ``|u|`` is a positive factor per query,
so the order of the warm items is exactly ALS's whatever the cold weights.

Exploration (a product choice): without a boost a cold item reaches a personal top 10
only when its calibrated estimate beats the shopper's tenth warm item, which is rare for
an item with no data of its own. ``exploration_boost`` is set at fit time so that, over
a fixed sample of training shoppers, cold items hold ``new_item_exposure`` times their
share of the catalog in the top ``exposure_list_length`` (1.0: a new product is shown
about as often as an average product until it has behaviour of its own). The boost is
never negative and only applies to items without events; ``new_item_exposure = 0``
turns it off (the calibrated estimate alone).

Vector interface (what serving uses):

- ``item_vectors()`` is float32 (n_items, factors + 1): a warm item's row is
  ``[y_j, 0]``; a cold item's row is ``[(projection_weight / warm_weight) * p_j,
  prior_j]`` with ``prior_j`` the sum of the prior, bias and boost terms above; an item
  with neither events nor text is all zero (no opinion, leave it out of the index).
- ``query_vector(query)`` is ``[warm_weight * u / |u|, 1]``, so ``score(query) ==
  item_vectors() @ query_vector(query)`` exactly, and an inner-product index over
  ``item_vectors()`` answers it.
- ``project(embeddings, category=..., created_ts=...)`` gives the rows of products
  embedded after training, in the same layout as ``item_vectors()`` (category index in
  the trained category numbering, -1 or None when unknown; ``created_ts`` in unix
  seconds, None taken as "created at the time of the last training event", i.e. new).
  Serving adds them to the index next to ``item_vectors()``; a zero embedding gives a
  zero row. ``project_factors(embeddings)`` is the bare ALS-space projection ``p_j``.

Artifacts saved before the calibrated hybrid existed (ALS-space vectors only), and
those saved before the kNN map existed (ridge maps, no ``text_map`` in their
configuration), still load and score as they did.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Self

import numpy as np

from recommender.algorithms.als import Als, AlsConfig, fold_in, fold_in_query, query_items
from recommender.algorithms.base import AlgorithmConfig, VectorAlgorithm, cosine_neighbours
from recommender.algorithms.data import History, Interactions, ItemFeatures, Query, event_type_codes
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.weighting import SECONDS_PER_DAY, event_values

EXPOSURE_MARGIN = 1e-4
TextMap = Literal["ridge", "knn"]
# Rows of embeddings compared with the teachers at once by the kNN map (bounds memory).
KNN_BLOCK_ROWS = 2048


@dataclass(frozen=True)
class ColdStartConfig(AlgorithmConfig):
    als: AlsConfig = field(default_factory=AlsConfig)
    # Items with at least this many events teach the text -> factor and text -> popularity maps.
    min_events_to_fit_map: int = 5
    # Items with fewer events than this are cold: scored by the calibrated estimate.
    min_events_for_own_vector: int = 1
    ridge_regularization: float = 10.0
    # How text becomes a cold item's ALS vector and popularity prior (module docstring);
    # the kNN map keeps the embeddings of up to ``knn_max_teachers`` warm items (those
    # with the most events) in the artifact. Chosen on MovieLens validation cuts by
    # ``python -m recommender.bench.tune_cold_start --maps`` (3 cuts x 3 seeds): the kNN
    # map over 50 neighbours put withheld items in the top 10 3.45x as often as random,
    # ridge (lambda 10, the earlier default) 2.65x, with NDCG@10 0.1463 against 0.1404.
    text_map: TextMap = "knn"
    knn_neighbours: int = 50
    knn_power: float = 1.0
    knn_max_teachers: int = 10_000
    # Rescale the text -> factor map so projections are as long as the warm items' own
    # vectors on average. Off by default: projection_weight calibrates the projection.
    match_warm_norms: bool = False
    # The conditional logit (see the module docstring), fitted on the MovieLens
    # validation split by recommender.bench.tune_cold_start (with the ridge map and the
    # title text; kept for the kNN map, which reads the same terms).
    warm_weight: float = 5.06
    projection_weight: float = 0.89
    category_popularity_weight: float = 0.79
    text_popularity_weight: float = 1.07
    newness_weight: float = 0.99
    cold_bias: float = -0.25
    # Half-life of the event values behind the popularity priors; None: all time alike.
    popularity_half_life_days: float | None = 7.0
    newness_half_life_days: float = 365.0
    # Exploration: cold items' share of the top ``exposure_list_length`` over a sample of
    # ``exposure_shoppers`` training shoppers, relative to their share of the catalog.
    new_item_exposure: float = 1.0
    exposure_list_length: int = 10
    exposure_shoppers: int = 256
    random_seed: int = 0

    def __post_init__(self) -> None:
        if self.ridge_regularization <= 0 or self.min_events_to_fit_map < 1 or self.min_events_for_own_vector < 1:
            raise ValueError("ridge_regularization > 0 and event thresholds >= 1 are required")
        if self.warm_weight <= 0 or self.newness_half_life_days <= 0:
            raise ValueError("warm_weight > 0 and newness_half_life_days > 0 are required")
        if self.text_map not in ("ridge", "knn"):
            raise ValueError(f"text_map must be ridge or knn, not {self.text_map!r}")
        if self.knn_neighbours < 1 or self.knn_power <= 0 or self.knn_max_teachers < 2:
            raise ValueError("knn_neighbours >= 1, knn_power > 0 and knn_max_teachers >= 2 are required")
        if self.new_item_exposure < 0 or self.exposure_list_length < 1 or self.exposure_shoppers < 1:
            raise ValueError(
                "new_item_exposure >= 0, exposure_list_length >= 1 and exposure_shoppers >= 1 are required"
            )


def fit_ridge(
    inputs: np.ndarray, targets: np.ndarray, regularization: float, sample_weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (d_in x d_out) and bias (d_out,) of ridge regression; the bias is not
    regularised (inputs and targets are centred). ``sample_weight`` weights the rows."""
    inputs = inputs.astype(np.float64)
    targets = targets.astype(np.float64)
    weight = np.ones(len(inputs)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    input_mean = weight @ inputs / weight.sum()
    target_mean = weight @ targets / weight.sum()
    centred = inputs - input_mean
    system = (centred.T * weight) @ centred + regularization * np.eye(inputs.shape[1])
    weights = np.linalg.solve(system, (centred.T * weight) @ (targets - target_mean))
    bias = target_mean - input_mean @ weights
    return weights.astype(np.float32), bias.astype(np.float32)


@dataclass(frozen=True, eq=False)
class ColdPriors:
    """The item-side prior features of cold items (float64, one entry per item)."""

    category_popularity: np.ndarray
    text_popularity: np.ndarray
    newness: np.ndarray

    def logit(self, config: ColdStartConfig) -> np.ndarray:
        """The prior terms of the conditional logit, without bias and boost."""
        return (
            config.category_popularity_weight * self.category_popularity
            + config.text_popularity_weight * self.text_popularity
            + config.newness_weight * self.newness
        )


@dataclass(frozen=True, eq=False)
class KnnTextMap:
    """Targets of warm items ("teachers") read off by text similarity: an embedding's
    prediction is the mean of its ``neighbours`` most similar teachers' targets (cosine),
    weighted by ``max(cos, 0) ** power``; 0 where no teacher is similar (or no text)."""

    embeddings: np.ndarray  # float32 (teachers, d), L2-normalised
    targets: np.ndarray  # float32 (teachers, m)
    neighbours: int
    power: float

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 (n, m) predictions for embeddings (n, d)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        out = np.zeros((len(embeddings), self.targets.shape[1]), dtype=np.float32)
        k = min(self.neighbours, len(self.embeddings))
        if k == 0:
            return out
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        unit = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
        for start in range(0, len(unit), KNN_BLOCK_ROWS):
            similarity = unit[start : start + KNN_BLOCK_ROWS] @ self.embeddings.T
            if k < similarity.shape[1]:
                nearest = np.argpartition(similarity, similarity.shape[1] - k, axis=1)[:, -k:]
            else:
                nearest = np.broadcast_to(np.arange(similarity.shape[1]), similarity.shape)
            weights = np.maximum(np.take_along_axis(similarity, nearest, axis=1), 0.0).astype(np.float64) ** self.power
            total = weights.sum(axis=1)
            summed = np.einsum("nk,nkm->nm", weights, self.targets[nearest].astype(np.float64))
            block = np.divide(summed, total[:, None], out=np.zeros_like(summed), where=total[:, None] > 0)
            out[start : start + len(block)] = block
        return out


class ColdStartHybrid(VectorAlgorithm[ColdStartConfig]):
    """ALS for warm items, a calibrated text/prior estimate plus exploration for cold ones;
    needs text embeddings. See the module docstring for the model and the vector layout."""

    kind = "cold_start"
    config_class = ColdStartConfig

    _legacy: bool = False

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        als = Als(self.config.als).fit(interactions, features)
        self._fit_cold(als.item_vectors(), interactions, features)

    @classmethod
    def from_als(
        cls, als: Als, interactions: Interactions, features: ItemFeatures, config: ColdStartConfig | None = None
    ) -> Self:
        """The hybrid around an already fitted ALS (trained on ``interactions``), so a
        training run does not factorise twice. ``config.als`` is replaced by ``als``'s."""
        hybrid = cls(dataclasses.replace(config or ColdStartConfig(), als=als.config))
        hybrid._n_items = interactions.n_items
        hybrid._fit_cold(als.item_vectors(), interactions, features)
        return hybrid

    # -- fitting ------------------------------------------------------------------------

    def _fit_cold(self, item_factors: np.ndarray, interactions: Interactions, features: ItemFeatures) -> None:
        config = self.config
        embeddings = features.text_embeddings
        if embeddings is None:
            raise ValueError("the cold-start hybrid needs features.text_embeddings")
        if features.n_items != interactions.n_items:
            raise ValueError(f"features cover {features.n_items} items, interactions {interactions.n_items}")
        self._n_items = interactions.n_items
        self._legacy = False
        events_per_item = np.bincount(interactions.item, minlength=interactions.n_items)
        has_text = np.any(embeddings != 0, axis=1)
        teachers = (events_per_item >= config.min_events_to_fit_map) & has_text
        if teachers.sum() < 2:
            raise ValueError("too few warm items with text to learn the text -> factor map")
        self._own_vector = events_per_item >= config.min_events_for_own_vector
        relative = self._relative_popularity(interactions)
        if config.text_map == "knn":
            self._fit_knn_map(embeddings, item_factors, relative, teachers, events_per_item)
        else:
            self._fit_factor_map(embeddings[teachers], item_factors[teachers])
            self._fit_popularity_map(embeddings[teachers], relative[teachers])
        # Only items without their own vector need the text map (the kNN map costs a
        # similarity row per item).
        projected = np.zeros_like(item_factors, dtype=np.float32)
        projected[~self._own_vector] = self.project_factors(embeddings[~self._own_vector])
        self._fold_vectors = np.ascontiguousarray(np.where(self._own_vector[:, None], item_factors, projected))
        self._fit_priors(interactions, features)
        self._exploration_boost = 0.0
        self._refresh()
        if config.new_item_exposure > 0:
            self._exploration_boost = self._exposure_boost(interactions)
            self._refresh()

    def _fit_factor_map(self, embeddings: np.ndarray, factors: np.ndarray) -> None:
        weights, bias = fit_ridge(embeddings, factors, self.config.ridge_regularization)
        if self.config.match_warm_norms:
            # Ridge predictions shrink towards the mean vector; optionally scale the map so
            # the teachers' projections are as long as their own vectors.
            predicted = embeddings @ weights + bias
            own_norm = np.linalg.norm(factors, axis=1).mean()
            projected_norm = np.linalg.norm(predicted, axis=1).mean()
            scale = own_norm / projected_norm if projected_norm > 0 else 1.0
            weights, bias = weights * scale, bias * scale
        self._weights, self._bias = weights.astype(np.float32), bias.astype(np.float32)

    def _item_values(self, interactions: Interactions) -> tuple[np.ndarray, float]:
        """Each item's summed (decayed) event value, and the mean over warm items."""
        config = self.config
        values = event_values(
            interactions, event_weights=config.als.event_weights, half_life_days=config.popularity_half_life_days
        ).astype(np.float64)
        item_value = np.bincount(interactions.item, weights=values, minlength=interactions.n_items)
        warm = self._own_vector
        return item_value, float(item_value[warm].mean()) if warm.any() else 0.0

    def _relative_popularity(self, interactions: Interactions) -> np.ndarray:
        """``log(1 + value / mean value of a warm item)`` per item (0 without events)."""
        item_value, mean_value = self._item_values(interactions)
        return np.log1p(item_value / mean_value) if mean_value > 0 else np.zeros(interactions.n_items)

    def _fit_popularity_map(self, embeddings: np.ndarray, relative: np.ndarray) -> None:
        """Ridge from the teachers' embeddings to their relative popularity, centred on the
        teachers so an average-looking cold item gets 0."""
        pop_weights, pop_bias = fit_ridge(embeddings, relative[:, None], self.config.ridge_regularization)
        self._popularity_weights = pop_weights[:, 0].astype(np.float32)
        self._popularity_bias = float(pop_bias[0])
        self._popularity_bias -= float(np.mean(embeddings @ self._popularity_weights + self._popularity_bias))

    def _fit_knn_map(
        self,
        embeddings: np.ndarray,
        item_factors: np.ndarray,
        relative: np.ndarray,
        teachers: np.ndarray,
        events_per_item: np.ndarray,
    ) -> None:
        """The kNN map over the teachers (at most ``knn_max_teachers``, most events first):
        targets are their ALS factors and their relative popularity less its mean."""
        config = self.config
        chosen = np.flatnonzero(teachers)
        if len(chosen) > config.knn_max_teachers:
            order = np.lexsort((chosen, -events_per_item[chosen]))
            chosen = np.sort(chosen[order[: config.knn_max_teachers]])
        unit = np.asarray(embeddings[chosen], dtype=np.float32)
        unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
        popularity = relative[chosen] - relative[chosen].mean()
        targets = np.hstack([item_factors[chosen], popularity[:, None]]).astype(np.float32)
        self._knn = KnnTextMap(
            embeddings=np.ascontiguousarray(unit),
            targets=targets,
            neighbours=config.knn_neighbours,
            power=config.knn_power,
        )

    def _text_popularity(self, embeddings: np.ndarray) -> np.ndarray:
        """float64 relative popularity that items with this text have, centred (0: average)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if self.config.text_map == "knn":
            return self._knn.predict(embeddings)[:, -1].astype(np.float64)
        return (embeddings @ self._popularity_weights + self._popularity_bias).astype(np.float64)

    def _fit_priors(self, interactions: Interactions, features: ItemFeatures) -> None:
        """Category popularity per category and newness; the cold priors of every item."""
        n_items = interactions.n_items
        item_value, mean_value = self._item_values(interactions)
        warm = self._own_vector
        # Category popularity: log of the mean value of a warm item of the category over
        # the mean value of any warm item; 0 for no category or a category without warm items.
        category = features.category
        n_categories = int(category.max()) + 1 if n_items and category.max() >= 0 else 0
        in_category = (category >= 0) & warm
        category_value = np.bincount(category[in_category], weights=item_value[in_category], minlength=n_categories)
        category_items = np.bincount(category[in_category], minlength=n_categories)
        self._category_log_popularity = np.zeros(n_categories, dtype=np.float64)
        if mean_value > 0:
            known = category_items > 0
            floor = 1e-3 * mean_value
            self._category_log_popularity[known] = np.log(
                (category_value[known] / category_items[known] + floor) / mean_value
            )
        embeddings = features.text_embeddings
        assert embeddings is not None
        # Newness, centred on the warm items with a known creation time.
        self._reference_ts = int(interactions.ts.max()) if len(interactions) else 0
        self._newness_centre = 0.0
        raw = self._raw_newness(features.created_ts)
        known_warm = warm & (features.created_ts != 0)
        if known_warm.any():
            self._newness_centre = float(raw[known_warm].mean())
        self._priors = self._prior_features(embeddings, category, features.created_ts, cold=~warm)

    def _raw_newness(self, created_ts: np.ndarray) -> np.ndarray:
        age_days = np.maximum(self._reference_ts - np.asarray(created_ts, dtype=np.float64), 0.0) / SECONDS_PER_DAY
        return np.exp2(-age_days / self.config.newness_half_life_days)

    def _prior_features(
        self, embeddings: np.ndarray, category: np.ndarray, created_ts: np.ndarray, cold: np.ndarray | None = None
    ) -> ColdPriors:
        """The priors of the given items; text popularity only where ``cold`` (default:
        everywhere), 0 elsewhere (a warm item's own vector makes it unused)."""
        category = np.asarray(category, dtype=np.int64)
        created_ts = np.asarray(created_ts, dtype=np.int64)
        known_category = (category >= 0) & (category < len(self._category_log_popularity))
        category_popularity = np.zeros(len(category))
        category_popularity[known_category] = self._category_log_popularity[category[known_category]]
        if cold is None:
            text_popularity = self._text_popularity(embeddings)
        else:
            text_popularity = np.zeros(len(category))
            text_popularity[cold] = self._text_popularity(np.asarray(embeddings)[cold])
        newness = np.where(created_ts != 0, self._raw_newness(created_ts) - self._newness_centre, 0.0)
        return ColdPriors(
            category_popularity=category_popularity,
            text_popularity=text_popularity,
            newness=newness,
        )

    def _refresh(self) -> None:
        """Item vectors and the fold-in gram from the fitted parts."""
        fold = self._fold_vectors.astype(np.float64)
        if self._legacy:
            self._gram = fold.T @ fold
            self._set_item_vectors(self._fold_vectors)
            return
        # ALS's own gram (warm items only): a shopper with warm items only is folded in
        # exactly as ALS folds them in, so the warm order is ALS's.
        warm = fold[self._own_vector]
        self._gram = warm.T @ warm
        self._set_item_vectors(self._cold_rows(self._fold_vectors, self._priors, self._own_vector))

    def _cold_rows(self, factors: np.ndarray, priors: ColdPriors, own: np.ndarray) -> np.ndarray:
        """Item-vector rows: ``[y, 0]`` where ``own``, else ``[scaled projection, prior]``;
        all zero where the factors are zero (no text and no events)."""
        config = self.config
        rows = np.zeros((len(factors), factors.shape[1] + 1), dtype=np.float32)
        rows[:, :-1] = factors
        cold = ~own & np.any(factors != 0, axis=1)
        rows[cold, :-1] *= config.projection_weight / config.warm_weight
        rows[cold, -1] = priors.logit(config)[cold] + config.cold_bias + self._exploration_boost
        return rows

    def _exposure_boost(self, interactions: Interactions) -> float:
        """The smallest boost >= 0 with which cold items hold ``new_item_exposure`` times
        their catalog share of the top ``exposure_list_length`` of sampled shoppers."""
        config = self.config
        k = config.exposure_list_length
        candidate = self.items_with_vectors()
        cold = candidate & ~self._own_vector
        if not cold.any() or not (candidate & self._own_vector).any():
            return 0.0
        target = min(config.new_item_exposure * cold.sum() / candidate.sum(), 1.0) * k
        queries = _sample_shopper_queries(interactions, config, self._reference_ts)
        warm_top, cold_top = [], []
        for query, seen in queries:
            vector = self.query_vector(query)
            if vector is None:
                continue
            scores = (self.item_vectors() @ vector).astype(np.float64)
            scores[~candidate] = -np.inf
            scores[seen] = -np.inf
            warm_top.append(_top_values(np.where(cold, -np.inf, scores), k))
            cold_top.append(_top_values(np.where(cold, scores, -np.inf), k))
        if not warm_top:
            return 0.0
        warm_values, cold_values = np.array(warm_top), np.array(cold_top)

        def slots(boost: float) -> float:
            # The merged top k holds m cold items iff the m-th best cold item beats the
            # (k - m + 1)-th best warm item.
            beats = cold_values + boost > warm_values[:, ::-1]
            return float(beats.sum(axis=1).mean())

        if slots(0.0) >= target:
            return 0.0
        finite_warm = warm_values[np.isfinite(warm_values)]
        finite_cold = cold_values[np.isfinite(cold_values)]
        if len(finite_cold) == 0:
            return 0.0
        low = 0.0
        high = max(float(finite_warm.max() - finite_cold.min()) if len(finite_warm) else 0.0, 0.0) + 1.0
        for _ in range(50):
            middle = (low + high) / 2
            if slots(middle) >= target:
                high = middle
            else:
                low = middle
        # A margin far below any meaningful logit difference, so that float32 scoring
        # does not turn a bare win of a cold item into a tie it loses on the index.
        return high + EXPOSURE_MARGIN

    # -- serving ------------------------------------------------------------------------

    def project_factors(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 ALS-space vectors (n, factors) for text embeddings (n, d): the ridge or
        kNN map of ``text_map``; a zero embedding gives a zero row."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if not self._legacy and self.config.text_map == "knn":
            projected = self._knn.predict(embeddings)[:, :-1]
        else:
            projected = (embeddings @ self._weights + self._bias).astype(np.float32)
        projected[~np.any(embeddings != 0, axis=1)] = 0.0
        return projected

    def project(
        self,
        embeddings: np.ndarray,
        *,
        category: np.ndarray | None = None,
        created_ts: np.ndarray | None = None,
    ) -> np.ndarray:
        """float32 item-vector rows (n, item_vectors().shape[1]) for products embedded after
        training, scored as cold items (see the module docstring); a zero embedding gives
        a zero row."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        factors = self.project_factors(embeddings)
        if self._legacy:
            return factors
        n = len(embeddings)
        category = np.full(n, -1) if category is None else np.asarray(category)
        created_ts = np.full(n, self._reference_ts) if created_ts is None else np.asarray(created_ts)
        priors = self._prior_features(embeddings, category, created_ts)
        return self._cold_rows(factors, priors, np.zeros(n, dtype=bool))

    def own_vector_mask(self) -> np.ndarray:
        """Boolean per item: True where the item is warm (scored by its own ALS factors)."""
        return self._own_vector

    @property
    def exploration_boost(self) -> float:
        """The boost added to every cold item's logit (0 when exploration is off)."""
        return self._exploration_boost

    def fold_in_vectors(self) -> np.ndarray:
        """float32 (n_items, factors): own ALS factors of warm items, projections of cold
        ones; a query is folded in over these."""
        return self._fold_vectors

    def prior_features(self) -> ColdPriors:
        """The cold-item prior features of every item (used by the tuning benchmark); the
        text popularity of a warm item is 0 (unused)."""
        return self._priors

    def query_factors(self, query: Query) -> np.ndarray | None:
        """The shopper's folded-in ALS vector ``u`` (None when the query holds nothing usable).

        Cold items of the query count with their projected factors, as if they had been
        items of the factorisation."""
        if self._legacy:
            return fold_in_query(query, self._fold_vectors, self._gram, self.config.als)
        config = self.config.als
        items, values = query_items(query, self.n_items, config)
        if len(items) == 0:
            return None
        gram = self._gram
        cold = items[~self._own_vector[items]]
        if len(cold):
            projected = self._fold_vectors[cold].astype(np.float64)
            gram = gram + projected.T @ projected
        confidences = config.alpha * values.astype(np.float64)
        return fold_in(self._fold_vectors, gram, config.regularization, items, confidences)

    def query_vector(self, query: Query) -> np.ndarray | None:
        factors = self.query_factors(query)
        if factors is None or self._legacy:
            return factors
        norm = float(np.linalg.norm(factors))
        if norm == 0:
            return None
        vector = np.empty(len(factors) + 1, dtype=np.float32)
        vector[:-1] = self.config.warm_weight * factors / norm
        vector[-1] = 1.0
        return vector

    def similar_items(self, item: int, k: int) -> Ranking:
        """Nearest items by cosine similarity in the ALS space (projections for cold items)."""
        vectors = self._fold_vectors
        return cosine_neighbours(vectors, item, k, valid=np.any(vectors != 0, axis=1))

    def _arrays(self) -> dict[str, np.ndarray]:
        if self._legacy:
            return {
                "item_vectors": self._fold_vectors,
                "own_vector": self._own_vector,
                "map_weights": self._weights,
                "map_bias": self._bias,
            }
        if self.config.text_map == "knn":
            text_map = {"knn_embeddings": self._knn.embeddings, "knn_targets": self._knn.targets}
        else:
            text_map = {
                "map_weights": self._weights,
                "map_bias": self._bias,
                "popularity_weights": self._popularity_weights,
                "popularity_bias": np.array(self._popularity_bias),
            }
        return {
            "fold_vectors": self._fold_vectors,
            "own_vector": self._own_vector,
            **text_map,
            "category_log_popularity": self._category_log_popularity,
            "reference_ts": np.array(self._reference_ts, dtype=np.int64),
            "newness_centre": np.array(self._newness_centre),
            "prior_category_popularity": self._priors.category_popularity,
            "prior_text_popularity": self._priors.text_popularity,
            "prior_newness": self._priors.newness,
            "exploration_boost": np.array(self._exploration_boost),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._own_vector = arrays["own_vector"]
        if "fold_vectors" not in arrays:
            # An artifact of the earlier projection-only hybrid.
            self._legacy = True
            self._weights = arrays["map_weights"]
            self._bias = arrays["map_bias"]
            self._fold_vectors = arrays["item_vectors"]
            self._refresh()
            return
        self._legacy = False
        self._fold_vectors = arrays["fold_vectors"]
        if "knn_embeddings" not in arrays and self.config.text_map == "knn":
            # Saved before the kNN map existed: its configuration has no text_map (so it
            # reads as today's default) and its arrays are the ridge maps.
            self.config = dataclasses.replace(self.config, text_map="ridge")
        if self.config.text_map == "knn":
            self._knn = KnnTextMap(
                embeddings=arrays["knn_embeddings"],
                targets=arrays["knn_targets"],
                neighbours=self.config.knn_neighbours,
                power=self.config.knn_power,
            )
        else:
            self._weights = arrays["map_weights"]
            self._bias = arrays["map_bias"]
            self._popularity_weights = arrays["popularity_weights"]
            self._popularity_bias = float(arrays["popularity_bias"])
        self._category_log_popularity = arrays["category_log_popularity"]
        self._reference_ts = int(arrays["reference_ts"])
        self._newness_centre = float(arrays["newness_centre"])
        self._priors = ColdPriors(
            category_popularity=arrays["prior_category_popularity"],
            text_popularity=arrays["prior_text_popularity"],
            newness=arrays["prior_newness"],
        )
        self._exploration_boost = float(arrays["exploration_boost"])
        self._refresh()


def _top_values(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest values, best first, padded with ``-inf``."""
    out = np.full(k, -np.inf)
    finite = scores[np.isfinite(scores)]
    if len(finite) == 0:
        return out
    if len(finite) > k:
        finite = np.partition(finite, len(finite) - k)[len(finite) - k :]
    finite = np.sort(finite)[::-1]
    out[: len(finite)] = finite
    return out


def _sample_shopper_queries(
    interactions: Interactions, config: ColdStartConfig, reference_ts: int
) -> list[tuple[Query, np.ndarray]]:
    """Up to ``exposure_shoppers`` training shoppers (a seeded sample of those with counted
    events): each one's query at the last training time and their distinct items."""
    counted = event_type_codes(config.als.event_weights)[interactions.event_type] > 0
    events = interactions.select(counted)
    if len(events) == 0:
        return []
    order = np.lexsort((events.ts, events.user))
    users = events.user[order]
    distinct = np.unique(users)
    rng = np.random.default_rng(config.random_seed)
    chosen = np.sort(rng.choice(distinct, size=min(config.exposure_shoppers, len(distinct)), replace=False))
    starts = np.searchsorted(users, chosen, side="left")
    ends = np.searchsorted(users, chosen, side="right")
    queries = []
    for start, end in zip(starts, ends, strict=True):
        mine = order[start:end][-config.als.history_events :]
        history = History(
            item=events.item[mine], event_type=events.event_type[mine], ts=events.ts[mine], weight=events.weight[mine]
        )
        seen = np.unique(events.item[order[start:end]])
        queries.append((Query(history=history, now=reference_ts), seen))
    return queries
