// load.mjs BASE_URL SERVER_PID [CLIENTS] [REQUESTS_EACH]
// Load on a live `cake serve`: each request variant is first run alone (the reference), then CLIENTS
// concurrent streaming clients send REQUESTS_EACH requests each, twice over. Every stream must end with
// [DONE] and carry exactly its reference text (greedy, so batching must not change a single byte).
// Meanwhile clients that vanish mid-stream, send their body at one byte per second, or hold idle
// connections must not stop anyone else being served; the server's resident memory must stay flat
// between the two rounds; and afterwards no generation may be left running. Prints the numbers.
import net from 'node:net';
import fs from 'node:fs';

const [base, pidArg, clientsArg, eachArg] = process.argv.slice(2);
const pid = Number(pidArg), CLIENTS = Number(clientsArg || 32), EACH = Number(eachArg || 3);
const url = new URL(base);
let failures = 0;
const fail = (what) => { failures++; console.log(`FAIL ${what}`); };

const prompts = ['Explain quantum computing in simple terms.', 'Hello', 'Write a haiku about the sea.',
  'What is 2 + 2?', 'List three colors.', 'Tell me a story about a cat.', 'Translate "good morning" to French.',
  'Why is the sky blue?'];
const variants = prompts.map((p, i) => ({
  messages: [{ role: 'user', content: p }], temperature: 0, max_tokens: 8 + 5 * i,
  ...(i === 3 ? { stop: ['ก'] } : {}),
}));

async function plain(body) {
  const r = await fetch(base + '/v1/chat/completions', { method: 'POST', body: JSON.stringify(body) });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`status ${r.status}: ${JSON.stringify(j)}`);
  return j.choices[0].message.content;
}

// One streamed request: the text, whether [DONE] came last, and the completion tokens of the usage.
async function streamed(body, abortAfter = 0) {
  const ac = new AbortController();
  const r = await fetch(base + '/v1/chat/completions',
    { method: 'POST', body: JSON.stringify({ ...body, stream: true }), signal: ac.signal });
  const reader = r.body.getReader(), dec = new TextDecoder();
  let buf = '', text = '', done = false, events = 0, tokens = 0;
  for (;;) {
    let part;
    try { part = await reader.read(); } catch (e) { if (abortAfter) return { aborted: true }; throw e; }
    if (part.done) break;
    buf += dec.decode(part.value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k); buf = buf.slice(k + 2);
      if (!ev.startsWith('data: ')) continue;
      if (done) throw new Error('data after [DONE]');
      if (ev === 'data: [DONE]') { done = true; continue; }
      const j = JSON.parse(ev.slice(6));
      if (j.error) throw new Error(`error event: ${j.error.message}`);
      if (j.usage) tokens = j.usage.completion_tokens;
      if (j.choices[0] && j.choices[0].delta.content) text += j.choices[0].delta.content;
      if (abortAfter && ++events >= abortAfter) { ac.abort(); return { aborted: true }; }
    }
  }
  return { text, done, tokens };
}

function rssBytes() {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

// Nuisances: a body at one byte per second, and connections that never send anything.
function nuisances() {
  const socks = [];
  for (let i = 0; i < 2; i++) {
    const s = net.connect(Number(url.port), url.hostname, () => {
      s.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n`);
      const t = setInterval(() => s.write('{'), 1000);
      s.on('close', () => clearInterval(t));
      s.timer = t;
    });
    s.on('error', () => {});
    socks.push(s);
  }
  for (let i = 0; i < 4; i++) {
    const s = net.connect(Number(url.port), url.hostname);
    s.on('error', () => {});
    socks.push(s);
  }
  return socks;
}

const refs = [];
for (const v of variants) refs.push(await plain(v)); // alone, one at a time
console.log(`references: ${refs.map((t) => t.length).join(', ')} bytes`);

async function round(n) {
  const t0 = Date.now();
  let tokens = 0, streams = 0;
  const vanish = Array.from({ length: 4 }, (_, i) => streamed(variants[i], 2 + i).catch((e) => fail(`vanishing client: ${e}`)));
  const clients = Array.from({ length: CLIENTS }, async (_, c) => {
    for (let k = 0; k < EACH; k++) {
      const i = (c + k) % variants.length;
      try {
        const r = await streamed(variants[i]);
        streams++;
        tokens += r.tokens;
        if (!r.done) fail(`round ${n} client ${c} request ${k}: no [DONE]`);
        if (r.text !== refs[i]) fail(`round ${n} client ${c} variant ${i}: ${JSON.stringify(r.text)} != ${JSON.stringify(refs[i])}`);
      } catch (e) {
        fail(`round ${n} client ${c} request ${k}: ${e}`);
      }
    }
  });
  await Promise.all([...clients, ...vanish]);
  const s = (Date.now() - t0) / 1000;
  console.log(`round ${n}: ${streams} streams, ${tokens} tokens in ${s.toFixed(1)} s = ${(tokens / s).toFixed(1)} tok/s aggregate, rss ${(rssBytes() / 1048576).toFixed(1)} MiB`);
  return streams;
}

const socks = nuisances();
await round(0); // warm-up: caches and buffers reach their working size
const rss1 = rssBytes();
await round(1);
const rss2 = rssBytes();
await round(2);
const rss3 = rssBytes();
const growth = Math.max(rss2, rss3) - rss1;
console.log(`rss after rounds 0/1/2: ${[rss1, rss2, rss3].map((b) => (b / 1048576).toFixed(1)).join(' / ')} MiB`);
// A sanitizer build's allocator keeps freed memory in a quarantine and per-thread caches, so its bound is
// looser (CK_RSS_SLACK_MIB); leaks there are LeakSanitizer's to find at exit.
const slack = Number(process.env.CK_RSS_SLACK_MIB || 16);
if (growth > slack * 1048576) fail(`memory grew by ${(growth / 1048576).toFixed(1)} MiB across rounds (bound ${slack} MiB)`);
for (const s of socks) { clearInterval(s.timer); s.destroy(); }

// the vanished streams were cancelled: nothing is left running
let health = null;
for (let i = 0; i < 50; i++) {
  health = await (await fetch(base + '/health')).json();
  if (health.running === 0 && health.queued === 0) break;
  await new Promise((r) => setTimeout(r, 100));
}
if (health.running !== 0 || health.queued !== 0) fail(`still running after the load: ${JSON.stringify(health)}`);
console.log(failures ? `${failures} failures` : 'load: all streams complete and exact');
process.exit(failures ? 1 : 0);
