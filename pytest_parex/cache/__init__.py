"""The result cache: a check whose definition and inputs are byte for byte those of its last
pass is not run again -- its pass is replayed. One module per concern:

- :mod:`~pytest_parex.cache.listing`: which files a check reads (git's listing, ``reads`` globs).
- :mod:`~pytest_parex.cache.digests`: their content digests behind a racy-safe stat index.
- :mod:`~pytest_parex.cache.identity`: the tools, interpreters and installed code a check runs.
- :mod:`~pytest_parex.cache.key`: the key parts of a check's result and their digest.
- :mod:`~pytest_parex.cache.reasons`: why a check runs ("src/a.py changed").
- :mod:`~pytest_parex.cache.store`: the on-disk store of each check's last pass.
- :mod:`~pytest_parex.cache.incremental`: the cache as the gate uses it -- decide what replays,
  replay it, record new passes.

Everything but ``incremental`` is pure (no pytest) and tested directly. This file imports
nothing: ``config`` imports the glob language from ``listing`` on every run.
"""
