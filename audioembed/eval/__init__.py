"""`audioembed evaluate`: frozen embeddings -> linear probe accuracy, next to baselines and peers.

dataset.py reads labelled data, features.py computes and caches one vector per clip, baselines.py
and peers.py are the rows a model must beat, probe.py is the classifier protocol, harness.py runs
every row on every dataset, report.py writes the table and JSON, command.py is the CLI. Nothing here
imports torch or sklearn at import.
"""
