"""Real-time serving: the request path of ARCHITECTURE.md, in memory, per process.

- ``state``: the per-shop ``ServingState`` (catalog snapshot, campaigns, loaded models,
  fresh embeddings, precompiled rules, list cache) and the refresher that swaps it
- ``bundle``: loaded model versions and their view over the snapshot
- ``indexes``: exact and approximate (hnswlib) top-k over item vectors
- ``fresh``: embeddings of products newer than the text model
- ``signals``: a request's context, history and live session as snapshot indices
- ``sources``: the candidate sources a strategy weights
- ``filters``, ``diversity``: steps 5 and 7
- ``pipeline``: steps 3 to 7 with provenance
- ``cache``: non-personal lists
- ``log``: the served-list log, buffered and written in batches
- ``service``: ``recommendations_serve`` (the API) and ``recommendations_preview`` (console)
"""
