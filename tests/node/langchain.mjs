// LangChain's ChatOpenAI and OpenAIEmbeddings (@langchain/openai, on openai-node) against a
// running mockai, printing what LangChain made of the answers as JSON:
//
//   node langchain.mjs '{"baseURL": "http://127.0.0.1:PORT/v1"}'
//
// invoke and stream (usage included), tools bound and called then answered with the tool's
// result, streamed tool-call chunks, structured output, embeddings, the Responses API
// (`useResponsesApi`), and LangChain's own retry rules on a 429 and on insufficient_quota.
// tests/test_langchain_js.py checks the results against the server's journal.

import { HumanMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { z } from "zod";

const weather = tool(async ({ city }) => JSON.stringify({ city, forecast: "sunny" }), {
  name: "get_weather",
  description: "The weather in a city",
  schema: z.object({ city: z.string() }),
});

const textOf = (content) =>
  typeof content === "string" ? content : content.map((part) => part.text ?? "").join("");

async function failure(promise) {
  const started = performance.now();
  try {
    await promise;
    return { ms: Math.round(performance.now() - started), error: null };
  } catch (error) {
    return { ms: Math.round(performance.now() - started), error: error?.name ?? String(error) };
  }
}

async function main() {
  const { baseURL } = JSON.parse(process.argv[2]);
  const settings = { model: "gpt-4o-mini", apiKey: "sk-langchain", configuration: { baseURL } };
  const model = new ChatOpenAI({ ...settings, maxRetries: 0 });
  const out = {};

  const answer = await model.invoke("Hello there");
  out.invoke = { text: answer.content, usage: answer.usage_metadata };
  let streamed = "";
  let last;
  for await (const chunk of await model.stream("Hello there")) {
    streamed += chunk.content;
    last = chunk;
  }
  out.stream = { text: streamed, usage: last?.usage_metadata ?? null };

  const withTools = model.bindTools([weather], { tool_choice: "required" });
  const call = await withTools.invoke("What is the weather in Paris?");
  const result = await weather.invoke(call.tool_calls[0]);
  const final = await model
    .bindTools([weather])
    .invoke([new HumanMessage("What is the weather in Paris?"), call, result]);
  out.tools = { calls: call.tool_calls, result: result.content, final: final.content };

  const chunks = [];
  for await (const chunk of await withTools.stream("What is the weather in Rome?")) {
    chunks.push(...(chunk.tool_call_chunks ?? []));
  }
  out.streamedToolCall = {
    chunks: chunks.length,
    args: chunks.map((c) => c.args ?? "").join(""),
    name: chunks.map((c) => c.name ?? "").join(""),
  };

  const Forecast = z.object({ city: z.string(), temperature: z.number() });
  out.structured = await model.withStructuredOutput(Forecast).invoke("The weather in Oslo");

  const embeddings = new OpenAIEmbeddings({ ...settings, model: "text-embedding-3-small" });
  out.embeddings = await embeddings.embedDocuments(["a cat sat on the mat", "the cats sat"]);

  const responses = new ChatOpenAI({ ...settings, useResponsesApi: true, maxRetries: 0 });
  out.responses = textOf((await responses.invoke("Hello there")).content);
  let responsesStreamed = "";
  for await (const chunk of await responses.stream("Hello there")) {
    responsesStreamed += textOf(chunk.content);
  }
  out.responsesStream = responsesStreamed;

  // LangChain retries by its own rules (AsyncCaller), not openai-node's.
  const retrying = new ChatOpenAI({ ...settings, maxRetries: 2 });
  const fault = (value) => ({ options: { headers: { "x-mockai-fault": value } } });
  // Its retries call openai-node again, each saying x-stainless-retry-count: 0: by that count
  // every attempt is a first one. `count=requests` has mockai number them itself.
  const retryingOnce = new ChatOpenAI({ ...settings, maxRetries: 1 });
  out.everyAttemptFirst = await failure(
    retryingOnce.invoke("every attempt first", fault("rate_limit;retry_after=100ms;attempts=1")),
  );
  out.rateLimited = await failure(
    retrying.invoke(
      "rate limited",
      fault("rate_limit;retry_after=100ms;attempts=1;count=requests"),
    ),
  );
  out.quota = await failure(retrying.invoke("quota", fault("insufficient_quota")));
  process.stdout.write(JSON.stringify(out), () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
