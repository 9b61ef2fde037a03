// @upstash/redis reads what the Python client wrote, then writes values for it to read.
// Usage: node tests/cache/interop_js.mjs URL TOKEN  -> prints one JSON line.
import { Redis } from "@upstash/redis";

const [url, token] = process.argv.slice(2);
const redis = new Redis({ url, token, enableTelemetry: false, retry: { retries: 0 } });

const seen = {
  user: await redis.get("py:user"),
  text: await redis.get("py:text"),
  count: await redis.get("py:count"),
  ttl: await redis.ttl("py:user"),
};
await redis.set("js:obj", { name: "ada", tags: ["x", "y"], n: 1.5 });
await redis.set("js:text", "plain words");
await redis.incrby("js:count", 41);
await redis.set("js:session", { user: 7 }, { ex: 3600 });
console.log(JSON.stringify(seen));
