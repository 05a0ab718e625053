// openai-node's helpers that take JavaScript (zod schemas, tool functions), run against a mockai,
// printing what each made of the answers as JSON:
//
//   node openai_helpers.mjs '{"baseURL": "http://127.0.0.1:PORT/v1"}'
//
// runTools (the SDK calls the tool and sends its result back until the model answers), streamed
// too; parse and stream with zodResponseFormat; responses.parse with zodTextFormat. The tests
// (tests/test_openai_node.py) check the results against the server's journal.

import OpenAI from "openai";
import { zodFunction, zodResponseFormat, zodTextFormat } from "openai/helpers/zod";
import { z } from "zod";

const Weather = z.object({ city: z.string(), unit: z.enum(["c", "f"]) });
const Forecast = z.object({ city: z.string(), temperature: z.number(), sunny: z.boolean() });

const calls = [];
const getWeather = async ({ city, unit }) => {
  calls.push({ city, unit });
  return { city, unit, forecast: "sunny" };
};

const plain = (value) => JSON.parse(JSON.stringify(value));

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const client = new OpenAI({ baseURL: spec.baseURL, apiKey: "sk-node-helpers", maxRetries: 0 });
  const ask = (content) => [{ role: "user", content }];
  const tools = [zodFunction({ name: "get_weather", parameters: Weather, function: getWeather })];
  const out = {};

  const runner = client.chat.completions.runTools({
    model: "gpt-4o-mini",
    messages: ask("What is the weather in Paris?"),
    tools,
  });
  out.runTools = {
    finalContent: await runner.finalContent(),
    messages: plain(runner.messages),
    calls: [...calls],
  };

  const streaming = client.chat.completions.runTools({
    model: "gpt-4o-mini",
    messages: ask("What is the weather in Rome?"),
    tools,
    stream: true,
  });
  let streamedText = "";
  streaming.on("content", (delta) => {
    streamedText += delta;
  });
  out.runToolsStreamed = {
    finalContent: await streaming.finalContent(),
    streamedText,
    calls: calls.slice(out.runTools.calls.length),
  };

  const format = zodResponseFormat(Forecast, "forecast");
  const parsed = await client.chat.completions.parse({
    model: "gpt-4o-mini",
    messages: ask("The forecast for Oslo"),
    response_format: format,
  });
  out.parse = { parsed: parsed.choices[0].message.parsed, content: parsed.choices[0].message.content };

  const stream = client.chat.completions.stream({
    model: "gpt-4o-mini",
    messages: ask("The forecast for Oslo"),
    response_format: format,
  });
  const partials = [];
  stream.on("content.delta", ({ parsed: partial }) => partials.push(plain(partial ?? null)));
  const final = await stream.finalChatCompletion();
  out.stream = { parsed: final.choices[0].message.parsed, partials: partials.length };

  const response = await client.responses.parse({
    model: "gpt-4o-mini",
    input: "The forecast for Oslo",
    text: { format: zodTextFormat(Forecast, "forecast") },
  });
  out.responsesParse = { parsed: response.output_parsed, text: response.output_text };

  // What zod itself says of each parsed value: the SDK parsed it, zod validates it.
  out.valid = [out.parse.parsed, out.stream.parsed, out.responsesParse.parsed].map(
    (value) => Forecast.safeParse(value).success,
  );
  process.stdout.write(JSON.stringify(out), () => process.exit(0));
}

main().catch((error) => {
  process.stderr.write(String(error?.stack ?? error));
  process.exit(1);
});
