// openai_client.mjs BASE_URL PROMPT MAX_TOKENS EXPECTED_TEXT PROMPT_TOKENS
// The official openai package against a live `cake serve`: a plain and a streamed greedy completion must
// both give EXPECTED_TEXT, with usage counts equal to the prompt's tokens and the tokens generated, and
// the model id from /v1/models. Exits non-zero with the difference on any mismatch.
import OpenAI from 'openai';

const [base, prompt, maxTokens, expected, promptTokens] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + '/v1', apiKey: 'unused', maxRetries: 0 });
let failures = 0;
const check = (ok, what) => {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

const models = await client.models.list();
const id = models.data[0].id;
check(models.data.length === 1 && typeof id === 'string', `models: ${id}`);

const req = { model: id, messages: [{ role: 'user', content: prompt }], temperature: 0, max_tokens: Number(maxTokens) };
const plain = await client.chat.completions.create(req);
const text = plain.choices[0].message.content;
check(text === expected, `plain text: ${JSON.stringify(text)}`);
check(plain.choices[0].finish_reason === 'length', `plain finish_reason ${plain.choices[0].finish_reason}`);
check(plain.usage.prompt_tokens === Number(promptTokens), `plain usage.prompt_tokens ${plain.usage.prompt_tokens}`);
check(plain.usage.completion_tokens === Number(maxTokens), `plain usage.completion_tokens ${plain.usage.completion_tokens}`);
check(plain.model === id && plain.object === 'chat.completion', `plain model ${plain.model}`);

const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
let streamed = '', finish = null, usage = null, chunks = 0, role = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const c = chunk.choices[0];
  if (!c) continue;
  if (c.delta.role) role = c.delta.role;
  if (c.delta.content) streamed += c.delta.content;
  if (c.finish_reason) finish = c.finish_reason;
}
check(streamed === expected, `streamed text in ${chunks} chunks: ${JSON.stringify(streamed)}`);
check(role === 'assistant' && finish === 'length', `streamed role ${role}, finish_reason ${finish}`);
check(usage && usage.prompt_tokens === Number(promptTokens) && usage.completion_tokens === Number(maxTokens),
  `streamed usage ${JSON.stringify(usage)}`);

// a stop string ends the text before it, with finish_reason "stop"
const cut = expected.indexOf('(calc');
const stopped = await client.chat.completions.create({ ...req, stop: ['(calc'] });
check(cut > 0 && stopped.choices[0].message.content === expected.slice(0, cut) &&
  stopped.choices[0].finish_reason === 'stop', `stop string: ${JSON.stringify(stopped.choices[0].message.content)}`);

// errors come back as the client's typed errors
try {
  await client.chat.completions.create({ model: id, messages: [] });
  check(false, 'empty messages accepted');
} catch (e) {
  check(e.status === 400 && /messages/.test(e.message), `empty messages: ${e.status} ${e.message}`);
}
process.exit(failures ? 1 : 0);
