"""Moving from a traditional Redis to Upstash, in the seed's three phases.

- :mod:`~continuum.migrate.redis_cache`: ``RedisCache``, the cache API over redis-py (TCP),
  for the parallel run. It needs the ``redis`` extra (``pip install
  'continuum-cache[redis]'``) and is imported only when asked for
  (``from continuum.cache import RedisCache``), never by a serverless code path.
- :mod:`~continuum.migrate.rollout`: ``RolloutCache``, writes to both stores and reads
  by a per-key rollout percentage, with shadow reads.
- :mod:`~continuum.migrate.copier` (with ``keydata``, ``plan``, ``checkpoint`` and
  ``connection``): the engine of ``continuum migrate``, which copies a Redis's keys
  into the configured Upstash database, resumably.

This package's ``__init__`` imports nothing, so importing the rollout helper does not
import redis-py either.
"""
