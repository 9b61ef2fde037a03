// Hosts a Cloudflare Python Worker under the real Pyodide runtime in Node, for the tests.
//
// workerd itself cannot run offline (it downloads its Pyodide bundle), so this script plays
// its part: it loads the npm `pyodide` package, installs local wheels (our project, its
// pure-Python dependencies and the real `workers-runtime-sdk`), registers the two
// workerd-internal JS modules the SDK imports as small stubs, and then drives the worker's
// `Default(ctx, env).fetch(request)` the way workerd does: one entrypoint instance per
// request, arguments and results converted by the SDK's own RPC helpers.
//
// Loading Pyodide takes seconds, so one process serves many requests: a JSON object per
// line on stdin ({"id", "method", "url", "headers": [[k, v], ...], "body": base64|null,
// "env": {name: value}}: the Worker's bindings for this request, so one process can
// play several deployments),
// a JSON object per line on stdout ({"id", "status", "headers", "body"} or {"id", "error"}),
// in the order the requests finish.
// The first line written is {"ready": true} or {"ready": false, "error": "..."}.
// Everything Python prints goes to stderr so it cannot corrupt the protocol.
//
// Usage: node worker_host.mjs CONFIG.json
//   CONFIG: {"pyodide_dir", "wheels": [paths], "module", "class"}

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import path from "node:path";

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));

// Stand-ins for modules that only exist inside workerd. The SDK calls patchWaitUntil on
// every entrypoint's ctx and reads two compatibility flags; nothing else is used by a
// fetch handler.
function entrypointHelper(env) {
  return {
    patchWaitUntil(_ctx) {},
    doAnImport(name) {
      return import(name);
    },
    cloudflareWorkersModule: { env, waitUntil(_promise) {} },
    cloudflareSocketsModule: {},
  };
}

const compatFlags = {
  python_workflows_implicit_dependencies: false,
  python_request_headers_preserve_commas: false,
};

async function boot() {
  const pyodideDir = path.resolve(config.pyodide_dir);
  const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
  const log = (line) => process.stderr.write(line + "\n");
  const pyodide = await loadPyodide({ indexURL: pyodideDir + path.sep, stdout: log, stderr: log });
  pyodide.registerJsModule("_pyodide_entrypoint_helper", entrypointHelper({}));
  pyodide.registerJsModule("_cloudflare_compat_flags", compatFlags);
  // loadPackage reports a failed install on its error callback and carries on, so the
  // failures are collected and the imports are checked afterwards.
  const failures = [];
  await pyodide.loadPackage(config.wheels, { messageCallback: () => {}, errorCallback: (m) => failures.push(m) });
  if (failures.length) throw new Error(`wheel install failed: ${failures.join("; ")}`);
  const sdk = pyodide.pyimport("workers");
  const module = pyodide.pyimport(config.module);
  const entrypoint = module[config.class];
  if (entrypoint === undefined) throw new Error(`${config.module} has no ${config.class}`);
  return { pyodide, sdk, entrypoint };
}

async function serve(worker, message) {
  const init = { method: message.method, headers: message.headers };
  if (message.body !== null && message.body !== undefined && !["GET", "HEAD"].includes(message.method)) {
    init.body = Buffer.from(message.body, "base64");
  }
  // "stream_bytes": an upload of that many bytes with no declared length (chunked), made
  // on demand; the answer reports how many bytes the Worker pulled from it.
  const upload = { pulled: 0 };
  if (message.stream_bytes) {
    init.duplex = "half";
    init.body = new ReadableStream({
      pull(controller) {
        if (upload.pulled >= message.stream_bytes) {
          controller.close();
          return;
        }
        const size = Math.min(65536, message.stream_bytes - upload.pulled);
        upload.pulled += size;
        controller.enqueue(new Uint8Array(size).fill(120));
      },
    }, { highWaterMark: 0 });
  }
  const request = new Request(message.url, init);
  const ctx = { waitUntil(_promise) {}, passThroughOnException() {} };
  const instance = worker.entrypoint(ctx, message.env ?? {});
  try {
    // "raw" hands over the JavaScript Request unconverted, as older runtimes did.
    const argument = message.raw ? request : worker.sdk.python_from_rpc(request);
    const result = await instance.fetch(argument);
    const response = worker.sdk.python_to_rpc(result);
    const body = Buffer.from(await response.arrayBuffer());
    return {
      id: message.id,
      status: response.status,
      headers: [...response.headers.entries()],
      body: body.toString("base64"),
      pulled: upload.pulled,
    };
  } finally {
    instance.destroy();
  }
}

let worker;
try {
  worker = await boot();
  reply({ ready: true });
} catch (err) {
  reply({ ready: false, error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
}

// Requests are served concurrently, as one isolate serves overlapping requests in
// workerd; answers carry the request's id and may come back in any order.
function answer(message) {
  serve(worker, message).then(reply, (err) =>
    reply({ id: message.id, error: String(err && err.message ? err.message : err) }),
  );
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let message;
  try {
    message = JSON.parse(line);
  } catch (err) {
    reply({ id: null, error: `not JSON: ${err.message}` });
    continue;
  }
  answer(message);
}
