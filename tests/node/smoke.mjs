// Smoke test of @upstash/redis (the official JS client) against an Upstash-compatible URL.
// Usage: node tests/node/smoke.mjs URL TOKEN   -> prints "ok" and exits 0, or throws.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Redis } from "@upstash/redis";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node tests/node/smoke.mjs URL TOKEN");
  process.exit(2);
}

for (const responseEncoding of ["base64", false]) {
  const redis = new Redis({ url, token, responseEncoding, enableTelemetry: false,
                            retry: { retries: 0 } });
  const tag = `enc-${responseEncoding}`;

  // JSON values are serialised on write and parsed on read.
  assert.equal(await redis.set(`${tag}:user`, { name: "ada", langs: ["py", "js"] }), "OK");
  assert.deepEqual(await redis.get(`${tag}:user`), { name: "ada", langs: ["py", "js"] });
  assert.equal(await redis.set(`${tag}:text`, "héllo", { ex: 100 }), "OK");
  assert.equal(await redis.get(`${tag}:text`), "héllo");
  assert.ok((await redis.ttl(`${tag}:text`)) > 0);

  assert.equal(await redis.incr(`${tag}:n`), 1);
  assert.equal(await redis.incrby(`${tag}:n`, 9), 10);

  const pipe = redis.pipeline();
  pipe.set(`${tag}:p`, 1);
  pipe.incr(`${tag}:p`);
  pipe.hset(`${tag}:h`, { field: "value" });
  pipe.hgetall(`${tag}:h`);
  assert.deepEqual(await pipe.exec(), ["OK", 2, 1, { field: "value" }]);

  const tx = redis.multi();
  tx.incr(`${tag}:n`);
  tx.get(`${tag}:n`);
  assert.deepEqual(await tx.exec(), [11, 11]);

  // Scripts: EVALSHA by the SHA1 of the original text, #!lua line included.
  const source = "#!lua flags=allow-key-locking\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])";
  const sha = createHash("sha1").update(source).digest("hex");
  assert.equal(await redis.scriptLoad(source), sha);
  assert.equal(await redis.evalsha(sha, [`${tag}:s`], [5]), 5);
  assert.deepEqual(await redis.scriptExists(sha), [1]);
  const script = redis.createScript("return redis.call('GET', KEYS[1])");
  assert.equal(await script.exec([`${tag}:s`], []), 5);
  await assert.rejects(redis.evalsha("f".repeat(40), [], []), /NOSCRIPT/);
}

// Pub/sub over server-sent events: subscribe, then publish a JSON message.
{
  const redis = new Redis({ url, token, enableTelemetry: false, retry: { retries: 0 } });
  const channel = "smoke-chat";
  const sub = redis.subscribe([channel]);
  const deadline = (what) => new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`no ${what} within 15 s`)), 15000).unref());
  await Promise.race([new Promise((resolve) => sub.on("subscribe", resolve)),
                      deadline("subscribe confirmation")]);
  const received = new Promise((resolve) => sub.on("message", resolve));
  assert.equal(await redis.publish(channel, { hello: "wörld" }), 1);
  const message = await Promise.race([received, deadline("message")]);
  assert.deepEqual(message, { channel, message: { hello: "wörld" } });
  await sub.unsubscribe();

  // Patterns, and one subscriber on two channels.
  const psub = redis.psubscribe(["smoke-news.*"]);
  await Promise.race([new Promise((resolve) => psub.on("psubscribe", resolve)),
                      deadline("psubscribe confirmation")]);
  const pmessage = new Promise((resolve) => psub.on("pmessage", resolve));
  assert.equal(await redis.publish("smoke-news.tech", { text: "a, b" }), 1);
  assert.deepEqual(await Promise.race([pmessage, deadline("pmessage")]),
                   { pattern: "smoke-news.*", channel: "smoke-news.tech",
                     message: { text: "a, b" } });
  await psub.unsubscribe();

  const pair = redis.subscribe(["smoke-a", "smoke-b"]);
  let confirmed = 0;
  await Promise.race([new Promise((resolve) => pair.on("subscribe", () => {
    if (++confirmed === 2) resolve();
  })), deadline("two subscribe confirmations")]);
  const seen = [];
  const both = new Promise((resolve) => pair.on("message", (m) => {
    seen.push(m);
    if (seen.length === 2) resolve();
  }));
  await redis.publish("smoke-a", { n: 1 });
  await redis.publish("smoke-b", "plain");
  await Promise.race([both, deadline("two messages")]);
  seen.sort((x, y) => x.channel.localeCompare(y.channel));  // two streams: any order
  assert.deepEqual(seen, [{ channel: "smoke-a", message: { n: 1 } },
                          { channel: "smoke-b", message: "plain" }]);
  await pair.unsubscribe();
}
console.log("ok");
