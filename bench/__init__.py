"""Benchmarks of the clickstream pipeline on the local stack: ``python -m bench.run``.

See bench/README.md for what each stage measures and how to read the results.
"""
