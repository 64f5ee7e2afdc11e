// serve_bench.mjs BASE_URL MAX_TOKENS ROUNDS CONCURRENCY...
// Aggregate decode speed of a live `cake serve` (or any OpenAI-compatible server, e.g. llama-server)
// with N concurrent greedy streams: per round, N clients start together and each streams MAX_TOKENS
// tokens; the decode rate of a stream is its tokens (from usage) after the first over the time from its
// first to its last content chunk, and the aggregate is the sum over the streams that ran together. Prints the median
// over ROUNDS per concurrency, and one JSON line at the end.
const [base, maxArg, roundsArg, ...conc] = process.argv.slice(2);
const MAX = Number(maxArg || 64), ROUNDS = Number(roundsArg || 3);
const prompts = ['Explain quantum computing in simple terms.', 'Write a haiku about the sea.',
  'Why is the sky blue?', 'Tell me a story about a cat.', 'List three colors.', 'What is 2 + 2?',
  'Translate "good morning" to French.', 'Hello'];

async function stream(i) {
  const body = { messages: [{ role: 'user', content: prompts[i % prompts.length] }], temperature: 0,
    max_tokens: MAX, stream: true, stream_options: { include_usage: true } };
  const r = await fetch(base + '/v1/chat/completions', { method: 'POST', body: JSON.stringify(body) });
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = '', first = 0, last = 0, n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith('data: {')) continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) n = j.usage.completion_tokens; /* an event may carry several tokens */
      if (j.choices[0] && j.choices[0].delta.content) {
        const t = performance.now();
        if (!first) first = t;
        last = t;
      }
    }
  }
  return { n, s: (last - first) / 1000 };
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const out = {};
for (const c of conc.map(Number)) {
  const agg = [];
  for (let r = 0; r < ROUNDS; r++) {
    const res = await Promise.all(Array.from({ length: c }, (_, i) => stream(i)));
    agg.push(res.reduce((s, x) => s + (x.n > 1 && x.s > 0 ? (x.n - 1) / x.s : 0), 0));
  }
  out[c] = median(agg);
  console.log(`${c} streams: aggregate decode ${out[c].toFixed(1)} tok/s (rounds: ${agg.map((x) => x.toFixed(1)).join(', ')})`);
}
console.log(JSON.stringify({ aggregate_tok_s: out }));
