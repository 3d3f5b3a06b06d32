"""Benchmarks: ``python -m bench`` (``make bench``) runs every module's ``main()``."""
