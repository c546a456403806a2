"""Session model: SASRec, a small causal transformer over the item sequence, in torch.

It predicts the next item from the items of the current session (or a shopper's
recent history), so anonymous and brand-new shoppers get sequence-aware results. The
query vector is the transformer's output after the last item; scores are its dot
product with the (tied) item embeddings, so serving can use an ANN index over them.

Training is bounded: at most ``max_steps`` batches (and ``epochs`` passes) over at most
``max_training_windows`` windows of ``max_length`` steps, with a sampled softmax over
``negatives`` shared random items when the catalog is larger than that. It stops earlier
when the loss on held-out windows (``validation_windows`` of them, when there are at
least ten times as many windows) has not improved for ``patience`` checks, and keeps the
weights of the best check. So the number of steps grows with the data (epochs x
batches per epoch) up to ``max_steps``, and no further than the held-out loss improves.

Cost: shop sessions are short (a few items) while windows are ``max_length`` long, so
batches are drawn from windows of similar length and cut to their longest real window
(left padding never changes a real step's output); the item embeddings get sparse
gradients (only the rows of a batch's items and negatives) and a lazy Adam, so a step
costs the same whatever the catalog size. torch is imported on first use only.
"""

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from recommender.algorithms.base import AlgorithmConfig, VectorAlgorithm
from recommender.algorithms.data import Interactions, ItemFeatures, Query, event_type_codes
from recommender.algorithms.matrices import dense_ids
from recommender.algorithms.weighting import default_event_weights

PADDING = 0  # item i is token i + 1


@dataclass(frozen=True)
class SasRecConfig(AlgorithmConfig):
    dimensions: int = 64
    layers: int = 2
    heads: int = 2
    max_length: int = 50
    dropout: float = 0.2
    # A training sequence is one session, or a shopper's whole history.
    sequence_by: Literal["session", "user"] = "session"
    # Training stops after ``epochs`` passes or ``max_steps`` batches, whichever is first;
    # only the most recent ``max_training_windows`` windows are used.
    epochs: int = 30
    max_steps: int = 1000
    max_training_windows: int = 200_000
    batch_size: int = 128
    learning_rate: float = 1e-3
    # Shared random negatives per batch; the full softmax is used when the catalog has
    # no more items than this.
    negatives: int = 256
    # Early stopping: up to this many windows (at most a tenth of them, none when that is
    # under 50) are held out; their loss is checked every ``validation_every`` steps and
    # training stops after ``patience`` checks without improvement. 0 turns it off.
    validation_windows: int = 2048
    validation_every: int = 100
    patience: int = 3
    # Event types of weight 0 (impressions by default) are not part of a sequence.
    event_weights: dict[str, float] = field(default_factory=default_event_weights)
    num_threads: int = 1
    random_seed: int = 0

    def __post_init__(self) -> None:
        if self.dimensions % self.heads:
            raise ValueError("dimensions must be a multiple of heads")
        if self.sequence_by not in ("session", "user"):
            raise ValueError("sequence_by must be session or user")
        if min(self.layers, self.max_length, self.epochs, self.max_steps, self.batch_size, self.negatives) < 1:
            raise ValueError("layers, max_length, epochs, max_steps, batch_size and negatives must be >= 1")
        if self.validation_windows < 0 or self.validation_every < 1 or self.patience < 1:
            raise ValueError("validation_windows >= 0, validation_every >= 1 and patience >= 1 are required")


class SasRec(VectorAlgorithm[SasRecConfig]):
    """Self-attentive sequential recommendation (Kang & McAuley, 2018), trained with
    (sampled) softmax cross-entropy on every next-item step."""

    kind = "sasrec"
    config_class = SasRecConfig
    # Batches the last fit took (early stopping may end it before the budget); 0 if loaded.
    training_steps: int = 0

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        import torch

        config = self.config
        windows_in, windows_out = training_windows(interactions, config)
        seen = np.zeros(interactions.n_items + 1, dtype=bool)
        seen[windows_in[windows_in != PADDING]] = True
        seen[windows_out[windows_out != PADDING]] = True
        threads = torch.get_num_threads()
        torch.set_num_threads(config.num_threads)
        try:
            torch.manual_seed(config.random_seed)
            self._network = _build_network(config, interactions.n_items)
            self.training_steps = _train(self._network, windows_in, windows_out, config, interactions.n_items)
            with torch.no_grad():
                # Items no sequence taught the model anything about: no opinion.
                self._network.item_embedding.weight[torch.from_numpy(~seen)] = 0.0
        finally:
            torch.set_num_threads(threads)
        self._network.eval()
        self._refresh_item_vectors()

    def _refresh_item_vectors(self) -> None:
        weights = self._network.item_embedding.weight.detach().numpy()
        self._set_item_vectors(weights[1:])

    def query_vector(self, query: Query) -> np.ndarray | None:
        import torch

        counted = event_type_codes(self.config.event_weights)[query.history.event_type] > 0
        items = np.concatenate([query.history.item[counted], query.context_items]).astype(np.int64)
        items = items[(items >= 0) & (items < self.n_items)]
        items = _without_repeats(items)[-self.config.max_length :]
        if len(items) == 0:
            return None
        tokens = torch.from_numpy(items + 1).unsqueeze(0)
        with torch.inference_mode():
            hidden = self._network(tokens)
        return hidden[0, -1].numpy().astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"param.{name}": tensor.detach().numpy() for name, tensor in self._network.state_dict().items()}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        import torch

        self._network = _build_network(self.config, self.n_items)
        state = {name.removeprefix("param."): torch.from_numpy(array.copy()) for name, array in arrays.items()}
        self._network.load_state_dict(state)
        self._network.eval()
        self._refresh_item_vectors()


def training_windows(interactions: Interactions, config: SasRecConfig) -> tuple[np.ndarray, np.ndarray]:
    """Input and target token windows (int64, n_windows x max_length, left-padded).

    Each sequence (session or user, chronological, repeats of the same item in a row
    collapsed) is cut from its end into windows of ``max_length`` next-item steps; the
    most recent windows are kept when there are more than ``max_training_windows``.
    """
    counted = event_type_codes(config.event_weights)[interactions.event_type] > 0
    events = interactions.select(counted)
    group_ids = events.session if config.sequence_by == "session" else events.user.astype(np.int64)
    group, _ = dense_ids(group_ids)
    order = np.lexsort((events.ts, group))
    group, item = group[order], events.item[order].astype(np.int64)
    repeat = np.zeros(len(item), dtype=bool)
    repeat[1:] = (group[1:] == group[:-1]) & (item[1:] == item[:-1])
    group, item = group[~repeat], item[~repeat]
    if len(item) == 0:
        empty = np.zeros((0, config.max_length), dtype=np.int64)
        return empty, empty
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[starts, len(item)])
    position = np.arange(len(item)) - np.repeat(starts, lengths)
    length = np.repeat(lengths, lengths)
    is_target = position >= 1
    steps_to_end = (length - 1 - position)[is_target]
    window_in_sequence = steps_to_end // config.max_length
    slot = config.max_length - 1 - steps_to_end % config.max_length
    windows_per_sequence = np.ceil((lengths - 1) / config.max_length).astype(np.int64)
    first_window = np.cumsum(windows_per_sequence) - windows_per_sequence
    window = np.repeat(first_window, lengths)[is_target] + window_in_sequence
    n_windows = int(windows_per_sequence.sum())
    inputs = np.zeros((n_windows, config.max_length), dtype=np.int64)
    targets = np.zeros((n_windows, config.max_length), dtype=np.int64)
    target_index = np.flatnonzero(is_target)
    inputs[window, slot] = item[target_index - 1] + 1
    targets[window, slot] = item[target_index] + 1
    if n_windows > config.max_training_windows:
        # Window 0 of each sequence is its most recent: keep the most recent windows.
        recency = np.arange(n_windows) - np.repeat(first_window, windows_per_sequence)
        keep = np.sort(np.argsort(recency, kind="stable")[: config.max_training_windows])
        inputs, targets = inputs[keep], targets[keep]
    return inputs, targets


def _without_repeats(items: np.ndarray) -> np.ndarray:
    if len(items) < 2:
        return items
    return items[np.r_[True, items[1:] != items[:-1]]]


def _build_network(config: SasRecConfig, n_items: int) -> Any:
    import torch
    from torch import nn

    class SasRecNetwork(nn.Module):
        """Tokens (batch, length), left-padded with 0 -> hidden states (batch, length, d)."""

        def __init__(self) -> None:
            super().__init__()
            # Sparse gradients: a step touches only the rows of its items and negatives.
            self.item_embedding = nn.Embedding(n_items + 1, config.dimensions, padding_idx=PADDING, sparse=True)
            self.position_embedding = nn.Embedding(config.max_length, config.dimensions)
            self.dropout = nn.Dropout(config.dropout)
            self.blocks = nn.ModuleList(
                nn.TransformerEncoderLayer(
                    d_model=config.dimensions,
                    nhead=config.heads,
                    dim_feedforward=config.dimensions,
                    dropout=config.dropout,
                    activation="gelu",
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(config.layers)
            )
            self.final_norm = nn.LayerNorm(config.dimensions)
            nn.init.normal_(self.item_embedding.weight, std=config.dimensions**-0.5)
            with torch.no_grad():
                self.item_embedding.weight[PADDING] = 0.0

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            length = tokens.shape[1]
            positions = torch.arange(config.max_length - length, config.max_length)
            hidden = self.item_embedding(tokens) * math.sqrt(config.dimensions) + self.position_embedding(positions)
            real = tokens != PADDING
            hidden = self.dropout(hidden) * real.unsqueeze(-1)
            # A step sees itself and the real steps before it; padding is never attended
            # to (and a padding step attends to itself only, which keeps softmax finite).
            causal = torch.ones(length, length, dtype=torch.bool).tril()
            allowed = causal & (real.unsqueeze(1) | torch.eye(length, dtype=torch.bool))
            mask = (~allowed).repeat_interleave(config.heads, dim=0)
            for block in self.blocks:
                hidden = block(hidden, src_mask=mask) * real.unsqueeze(-1)
            return self.final_norm(hidden)

    return SasRecNetwork()


def _train(network: Any, inputs: np.ndarray, targets: np.ndarray, config: SasRecConfig, n_items: int) -> int:
    """Train in place; returns the number of steps taken."""
    import torch

    if len(inputs) == 0:
        return 0
    rng = np.random.default_rng(config.random_seed)
    held_out = _held_out_windows(len(inputs), config, rng)
    if len(held_out):
        keep = np.ones(len(inputs), dtype=bool)
        keep[held_out] = False
        check_inputs, check_targets = inputs[held_out], targets[held_out]
        inputs, targets = inputs[keep], targets[keep]
        check_rng_seed = config.random_seed + 1
    embedding = [network.item_embedding.weight]
    dense = [parameter for name, parameter in network.named_parameters() if name != "item_embedding.weight"]
    optimisers = [
        torch.optim.SparseAdam(embedding, lr=config.learning_rate),
        torch.optim.Adam(dense, lr=config.learning_rate),
    ]
    lengths = (inputs != PADDING).sum(axis=1)
    batches_per_epoch = max(len(inputs) // config.batch_size, 1)
    # Batches of short windows hold few steps: each batch's summed loss is divided by the
    # mean number of steps per batch (not its own), so every step weighs the same, as in
    # batches of mixed lengths.
    steps_per_batch = float(lengths.sum()) / batches_per_epoch
    total_steps = min(config.epochs * batches_per_epoch, config.max_steps)
    best_loss, best_state, checks_without_gain = math.inf, None, 0
    network.train()
    batches: list[np.ndarray] = []
    step = 0
    for step in range(1, total_steps + 1):
        if not batches:
            batches = _length_bucketed_batches(lengths, config.batch_size, batches_per_epoch, rng)
        batch = batches.pop()
        batch_inputs, batch_targets = _trimmed(inputs[batch], targets[batch], int(lengths[batch].max()))
        steps = int(lengths[batch].sum())
        loss = _next_item_loss(network, batch_inputs, batch_targets, config, n_items, rng) * (steps / steps_per_batch)
        for optimiser in optimisers:
            optimiser.zero_grad()
        loss.backward()
        for optimiser in optimisers:
            optimiser.step()
        if len(held_out) and (step % config.validation_every == 0 or step == total_steps):
            check = _held_out_loss(network, check_inputs, check_targets, config, n_items, check_rng_seed)
            if check < best_loss - 1e-4:
                best_loss, checks_without_gain = check, 0
                best_state = {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
            else:
                checks_without_gain += 1
                if checks_without_gain >= config.patience:
                    break
    if best_state is not None:
        network.load_state_dict(best_state)
    with torch.no_grad():
        network.item_embedding.weight[PADDING] = 0.0
    network.eval()
    return step


def _held_out_windows(n_windows: int, config: SasRecConfig, rng: np.random.Generator) -> np.ndarray:
    """Positions of the windows held out for early stopping (seeded; may be empty)."""
    count = min(config.validation_windows, n_windows // 10)
    if count < 50:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(n_windows, size=count, replace=False))


def _length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, batches_per_epoch: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of batches: a random order, sorted by length within groups of 50
    batches so a batch holds windows of similar length, then the batches shuffled."""
    order = rng.permutation(len(lengths))
    group = batch_size * 50
    for start in range(0, len(order), group):
        part = order[start : start + group]
        order[start : start + group] = part[np.argsort(lengths[part], kind="stable")]
    batches = np.array_split(order, batches_per_epoch)
    return [batches[index] for index in rng.permutation(len(batches))]


def _trimmed(inputs: np.ndarray, targets: np.ndarray, longest: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows cut to their last ``longest`` steps (what is cut is padding only)."""
    start = inputs.shape[1] - max(longest, 1)
    return inputs[:, start:], targets[:, start:]


def _held_out_loss(
    network: Any, inputs: np.ndarray, targets: np.ndarray, config: SasRecConfig, n_items: int, seed: int
) -> float:
    """Mean next-item loss on held-out windows, with the same negatives at every check."""
    import torch

    network.eval()
    rng = np.random.default_rng(seed)
    lengths = (inputs != PADDING).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in np.array_split(order, max(len(order) // config.batch_size, 1)):
            batch_inputs, batch_targets = _trimmed(inputs[batch], targets[batch], int(lengths[batch].max()))
            steps = int((batch_targets != PADDING).sum())
            total += float(_next_item_loss(network, batch_inputs, batch_targets, config, n_items, rng)) * steps
            count += steps
    network.train()
    return total / max(count, 1)


def _next_item_loss(
    network: Any, inputs: np.ndarray, targets: np.ndarray, config: SasRecConfig, n_items: int, rng: np.random.Generator
) -> Any:
    """Cross-entropy of the true next item at every real step: against all items when
    the catalog is small, else against ``negatives`` shared uniformly sampled items.
    Item embeddings are looked up through the module, so their gradients stay sparse."""
    import torch
    from torch.nn import functional

    target = torch.from_numpy(targets)
    real = target != PADDING
    hidden = network(torch.from_numpy(inputs))[real]
    positive = target[real]
    if n_items <= config.negatives:
        every_item = network.item_embedding(torch.arange(1, n_items + 1))
        return functional.cross_entropy(hidden @ every_item.T, positive - 1)
    negatives = torch.from_numpy(rng.integers(1, n_items + 1, size=config.negatives))
    positive_logit = (hidden * network.item_embedding(positive)).sum(-1, keepdim=True)
    negative_logits = hidden @ network.item_embedding(negatives).T
    # A sampled negative that is the positive itself is not a negative.
    negative_logits = negative_logits.masked_fill(negatives.unsqueeze(0) == positive.unsqueeze(1), -1e9)
    logits = torch.cat([positive_logit, negative_logits], dim=1)
    return functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
