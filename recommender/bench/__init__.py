"""Benchmarks of the recommender: offline quality on MovieLens 100K (``quality``)."""
