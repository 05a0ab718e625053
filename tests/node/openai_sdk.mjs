// Drives openai-node against a running mockai and prints what the SDK made of each answer, as JSON.
//
//   node openai_sdk.mjs '{"baseURL": "http://127.0.0.1:PORT/v1",
//                         "cases": [{"call": "chat.completions.create", "args": {...}}]}'
//
// (`"azure": {...}` in place of `baseURL`: an AzureOpenAI client with those options.)
//
// A case names an SDK method by its path on the client (`call`), its arguments (`args`, several
// with `argv`) and request options (`options`: headers, maxRetries, timeout), and how to read
// what it returns (`mode`):
//   value   the awaited result (default)
//   raw     the result with the response's status and headers (`.withResponse()`)
//   binary  a binary answer (speech, file content): its size, Content-Type, first bytes, and text
//   events  a stream: every event the SDK yields
//   helper  a stream helper (`chat.completions.stream`, `responses.stream`): its events, then
//           the awaited `final` method (finalChatCompletion, finalResponse)
//   pages   a list, auto-paginated with `for await`
// `within` (ms) races the case against a timer: a case still running then reports `pending`.
// In the arguments, `{"$file": {"name", "base64", "type"}}` becomes an upload (`toFile`), and
// `{"$ref": "2.result.id"}` is a value an earlier case returned (case 2's result's `id`).
// Each case gives one entry of the output list: `result`, or the `error` the SDK threw (its class,
// status, message, parsed error, and how many ms it took). tests/test_openai_node.py starts mockai
// and asserts on these.

import OpenAI, { AzureOpenAI, toFile } from "openai";

const KEY = "sk-node-sdk-0000";

async function revive(value, results) {
  if (Array.isArray(value)) return Promise.all(value.map((item) => revive(item, results)));
  if (value && typeof value === "object") {
    if (value.$file) {
      const { name, base64, type } = value.$file;
      return toFile(Buffer.from(base64, "base64"), name, { type });
    }
    if (value.$ref) {
      const found = value.$ref.split(".").reduce((at, key) => at?.[key], results);
      if (found === undefined) throw new Error(`nothing at ${value.$ref}`);
      return found;
    }
    const out = {};
    for (const [key, item] of Object.entries(value)) out[key] = await revive(item, results);
    return out;
  }
  return value;
}

function method(client, path) {
  const parts = path.split(".");
  let target = client;
  for (const part of parts.slice(0, -1)) target = target[part];
  const fn = target[parts.at(-1)];
  if (typeof fn !== "function") throw new Error(`no SDK method ${path}`);
  return fn.bind(target);
}

// JSON-able: typed arrays (decoded base64 embeddings) as plain arrays, the SDK's request id kept.
function plain(value) {
  return JSON.parse(
    JSON.stringify(value, (key, item) => (ArrayBuffer.isView(item) ? Array.from(item) : item)),
  );
}

function withRequestId(value) {
  const out = plain(value);
  if (out && typeof out === "object" && value?._request_id !== undefined) {
    out._request_id = value._request_id;
  }
  return out;
}

function described(error) {
  return {
    name: error?.constructor?.name ?? typeof error,
    status: error?.status ?? null,
    message: String(error?.message ?? error),
    error: error?.error ?? null,
    code: error?.code ?? null,
    type: error?.type ?? null,
    param: error?.param ?? null,
    requestID: error?.requestID ?? null,
    cause: error?.cause ? `${error.cause.constructor?.name}: ${error.cause.message ?? error.cause}` : null,
  };
}

async function run(client, c, events, results) {
  const fn = method(client, c.call);
  const argv = c.argv ? await revive(c.argv, results) : [await revive(c.args ?? {}, results)];
  const options = c.options ?? {};
  switch (c.mode ?? "value") {
    case "value":
      return withRequestId(await fn(...argv, options));
    case "raw": {
      const { data, response } = await fn(...argv, options).withResponse();
      return {
        data: withRequestId(data),
        status: response.status,
        headers: Object.fromEntries(response.headers),
      };
    }
    case "binary": {
      const response = await fn(...argv, options);
      const bytes = Buffer.from(await response.arrayBuffer());
      return {
        size: bytes.length,
        contentType: response.headers.get("content-type"),
        head: bytes.subarray(0, 8).toString("hex"),
        text: c.text ? bytes.toString("utf8") : null,
      };
    }
    case "events": {
      const stream = await fn(...argv, options);
      for await (const event of stream) events.push(plain(event));
      return { events };
    }
    case "helper": {
      const runner = fn(...argv, options);
      for await (const event of runner) events.push(plain(event));
      return { events, final: withRequestId(await runner[c.final]()) };
    }
    case "pages": {
      const items = [];
      for await (const item of fn(...argv, options)) items.push(plain(item));
      return { items };
    }
    default:
      throw new Error(`unknown mode ${c.mode}`);
  }
}

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const maxRetries = spec.maxRetries ?? 0;
  // `azure`: AzureOpenAI's options (endpoint, apiKey, apiVersion, deployment) instead.
  const client = spec.azure
    ? new AzureOpenAI({ ...spec.azure, maxRetries })
    : new OpenAI({ baseURL: spec.baseURL, apiKey: KEY, maxRetries });
  const results = [];
  for (const c of spec.cases) {
    const started = performance.now();
    const events = []; // (what a stream yielded before it failed is kept)
    let timer;
    const outcome = run(client, c, events, results).then(
      (result) => ({ result }),
      (error) => ({ error: described(error), events }),
    );
    const late = new Promise((resolve) => {
      if (c.within) timer = setTimeout(() => resolve({ pending: true, events }), c.within);
    });
    const entry = await Promise.race([outcome, late]);
    clearTimeout(timer);
    entry.ms = Math.round(performance.now() - started);
    results.push(entry);
  }
  // Exit once written (a case left pending may hold a connection open: do not wait for it).
  process.stdout.write(JSON.stringify(results), () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
