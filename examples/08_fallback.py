"""Example 8: automatic fallback when Upstash cannot be reached."""

from continuum import UpstashCache


def main() -> None:
    cache = UpstashCache(fallback=True)
    print(f"Current backend: {cache.current_backend.value}")

    # A client pointed at an address where nothing listens stands in for an outage.
    down = UpstashCache(
        mode="rest",
        rest_url="http://127.0.0.1:9",
        rest_token="example-token-0000",
        timeout=0.2,
        budget=1.0,
    )
    with down.request(deadline=1.0) as scope:
        result = down.set("session:outage", {"user": "alice"}, ttl=3600)
        print(f"write stored: {bool(result)}, degraded: {result.degraded}")
        print(f"read back in the same request: {down.get('session:outage')}")
    print(f"fallback operations: {scope.meter.fallback_ops}")
    info = down.info()  # a third failure: the circuit opens, later calls skip the network
    print(f"circuit: {info['circuit']['state']}")
    print(f"backend while down: {down.current_backend.value}")


if __name__ == "__main__":
    main()
