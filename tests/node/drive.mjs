// Drives one Node client against mockai (or one of its provider profiles) and prints what it saw,
// as JSON.
//
//   node drive.mjs '{"client": "groq", "baseURL": "http://127.0.0.1:PORT/groq/openai/v1",
//                    "model": "llama-3.3-70b-versatile", "cases": [{"op": "generate", ...}]}'
//
// client: openai (openai-node), groq, mistral, deepseek, openrouter (their Vercel AI SDK provider
// packages), compatible (@ai-sdk/openai-compatible), ai-openai (@ai-sdk/openai: the Responses API,
// or `"api": "chat"` / `"completion"`). Each case runs in order; its result (or the error the
// client raised: name, status, message, response body) is one entry of the output list.
// tests/test_profiles_node.py and tests/test_ai_sdk_openai.py start the servers and assert on the
// results.

import { createDeepSeek } from "@ai-sdk/deepseek";
import { createGroq } from "@ai-sdk/groq";
import { createMistral } from "@ai-sdk/mistral";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { createOpenRouter } from "@openrouter/ai-sdk-provider";
import { embedMany, generateImage, generateText, jsonSchema, Output, streamText, tool } from "ai";
import OpenAI from "openai";

const KEY = "sk-node-test-0000";

function provider(spec) {
  const options = { baseURL: spec.baseURL, apiKey: KEY };
  switch (spec.client) {
    case "groq":
      return createGroq(options);
    case "mistral":
      return createMistral(options);
    case "deepseek":
      return createDeepSeek(options);
    case "openrouter":
      return createOpenRouter(options);
    case "ai-openai":
      return createOpenAI(options);
    case "compatible":
      return createOpenAICompatible({ ...options, name: spec.name ?? "compatible", includeUsage: true });
    default:
      throw new Error(`unknown client ${spec.client}`);
  }
}

function described(error) {
  // The AI SDK's APICallError carries the status and the body; openai-node's APIError its status
  // and parsed error.
  return {
    error: {
      name: error?.constructor?.name ?? "Error",
      status: error?.statusCode ?? error?.status ?? null,
      message: String(error?.message ?? error),
      body: error?.responseBody ?? null,
      retryable: error?.isRetryable ?? null,
      cause: error?.cause ? String(error.cause.message ?? error.cause) : null,
    },
  };
}

const weather = () =>
  tool({
    description: "Get the weather in a city",
    inputSchema: jsonSchema({
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    }),
    execute: async ({ city }) => ({ city, forecast: "sunny" }),
  });

async function aiSdkCase(spec, model, c) {
  const prompt = c.prompt ?? "Hello there";
  const settings = { model, prompt, maxRetries: 0, ...(c.settings ?? {}) };
  if (c.op === "generate") {
    const result = await generateText(settings);
    return {
      text: result.text,
      finishReason: result.finishReason,
      usage: result.usage,
      providerMetadata: result.providerMetadata ?? null,
      headers: result.response?.headers ?? null,
    };
  }
  if (c.op === "stream") {
    const errors = [];
    const result = streamText({ ...settings, onError: ({ error }) => errors.push(described(error).error) });
    let text = "";
    const parts = [];
    for await (const part of result.fullStream) {
      parts.push(part.type);
      if (part.type === "text-delta") text += part.text;
    }
    return {
      text,
      parts: [...new Set(parts)],
      finishReason: await result.finishReason,
      usage: await result.totalUsage,
      providerMetadata: (await result.providerMetadata) ?? null,
      errors,
    };
  }
  if (c.op === "tools") {
    // Two steps: the model calls the tool, the SDK runs it and sends the result back (with the
    // call's id), the model answers.
    const result = await generateText({
      ...settings,
      tools: { get_weather: weather() },
      stopWhen: ({ steps }) => steps.length >= 2,
    });
    return {
      text: result.text,
      steps: result.steps.length,
      toolCalls: result.steps.flatMap((s) => s.toolCalls.map((t) => ({ id: t.toolCallId, name: t.toolName, input: t.input }))),
      finishReason: result.finishReason,
    };
  }
  if (c.op === "object") {
    // Structured output: the SDK sends the schema (json_schema) and validates what comes back.
    const result = await generateText({ ...settings, output: Output.object({ schema: jsonSchema(c.schema) }) });
    return { object: result.output, text: result.text, finishReason: result.finishReason };
  }
  if (c.op === "embed") {
    const result = await embedMany({ model: spec.provider.embedding(c.model), values: c.values, maxRetries: 0 });
    return { embeddings: result.embeddings, usage: result.usage };
  }
  if (c.op === "image") {
    const result = await generateImage({ model: spec.provider.image(c.model), prompt, maxRetries: 0, ...(c.settings ?? {}) });
    return { images: result.images.map((image) => ({ mediaType: image.mediaType, base64: image.base64 })) };
  }
  if (c.op === "stream-tools") {
    const result = streamText({ ...settings, tools: { get_weather: weather() } });
    const calls = [];
    for await (const part of result.fullStream) {
      if (part.type === "tool-call") calls.push({ id: part.toolCallId, name: part.toolName, input: part.input });
      if (part.type === "error") throw part.error;
    }
    return { toolCalls: calls, finishReason: await result.finishReason };
  }
  throw new Error(`unknown op ${c.op}`);
}

async function openaiCase(spec, client, c) {
  const messages = c.messages ?? [{ role: "user", content: c.prompt ?? "Hello there" }];
  const body = { model: spec.model, messages, ...(c.body ?? {}) };
  if (c.op === "generate") {
    const answer = await client.chat.completions.create(body);
    return { text: answer.choices[0].message.content, answer };
  }
  if (c.op === "stream") {
    const stream = await client.chat.completions.create({ ...body, stream: true });
    let text = "";
    const chunks = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices?.[0]?.delta?.content ?? "";
    }
    return { text, chunks };
  }
  if (c.op === "models") {
    const page = await client.models.list();
    return { ids: page.data.map((m) => m.id), models: page.data };
  }
  throw new Error(`unknown op ${c.op}`);
}

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const results = [];
  if (spec.client === "openai") {
    const client = new OpenAI({ baseURL: spec.baseURL, apiKey: KEY, maxRetries: 0 });
    for (const c of spec.cases) {
      try {
        results.push(await openaiCase(spec, client, c));
      } catch (error) {
        results.push({ error: { ...described(error).error, body: error?.error ?? null } });
      }
    }
  } else {
    const made = provider(spec);
    const model =
      spec.client === "compatible"
        ? made.chatModel(spec.model)
        : spec.api // @ai-sdk/openai: `responses` (its default), `chat` or `completion`
          ? made[spec.api](spec.model)
          : made(spec.model);
    spec.provider = made;
    for (const c of spec.cases) {
      try {
        results.push(await aiSdkCase(spec, model, c));
      } catch (error) {
        results.push(described(error));
      }
    }
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
