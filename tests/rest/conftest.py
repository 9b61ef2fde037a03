"""The wire's tests use the cache tests' emulator-behind-a-fault-proxy fixtures."""

from tests.cache.conftest import proxy, upstream

__all__ = ["proxy", "upstream"]
