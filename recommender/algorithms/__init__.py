"""Recommendation algorithms on arrays alone: numpy, scipy, implicit, torch; no Django.

- ``data``: Interactions, ItemFeatures, History, Query (dense indices, fixed dtypes)
- ``vocabulary``: the one external id <-> dense index mapping
- ``base``: the Algorithm interface (fit, score, recommend, similar_items, save/load)
  and VectorAlgorithm (item_vectors, query_vector)
- ``trending``, ``cooccurrence``, ``item_knn``, ``als``, ``text_similarity``,
  ``cold_start``, ``sasrec``: the algorithms; ``registry``: all of them by kind
- ``blend``: normalised score fusion, shared with serving; ``sources``: the named
  sources a blend's weights refer to; ``default_blend.json``: the default weights
- ``evaluation``: temporal hold-out and metrics
- ``weighting``, ``matrices``, ``neighbours``, ``ranking``, ``persistence``: shared parts
"""
