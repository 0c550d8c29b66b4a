"""Adapters to other tools, each on the public Embedder API: hear.py (the HEAR 2021 API), datasets.py (Hugging
Face datasets' map function), ray.py (Ray Data actors and `audioembed embed-cluster`). None is imported here:
each needs its own extra (torch, datasets, ray)."""
