// ui_test.mjs — drives cake's web UI in Debian's headless chromium with playwright-core, the way a person
// uses it: sets temperature 0 and 24 max tokens in Settings, sends the acceptance question, watches the
// answer stream in (at least 12 distinct partial renders while the message is still streaming: the test
// reaches the server through a proxy that hands on a chat answer's text at most 4 characters an event,
// 120 ms apart), checks the
// final text equals the greedy reference and the token count/tok/s line, stops a long answer with the
// Stop button, checks the markdown renderer escapes HTML and the <think> split, renders a canned reply with
// reasoning (served through page.route: the tiny model never thinks) as a collapsed dim block, hides an
// empty one, stops a reply while it reasons and before its first token (a chat endpoint that hangs, put in
// place of window.fetch), checks that exchanges without an answer are marked "not sent" and left out of the
// next request, that long unbroken text wraps, checks the cluster view against GET /api/v1/topology, that
// the settings and an API key typed in Settings survive a reload (the key sent as a Bearer token), that the
// model name in the header recovers from a 503 and a 401 at load (with a fake clock: page.clock), that
// Settings covers the chat on a phone instead of squeezing it (and the header fits it, the model's name
// readable), and that loading the page logs no console
// error. Saves screenshots.
// usage: node ui_test.mjs URL GREEDY_TEXT_FILE SCREENSHOT.png CLUSTER_SCREENSHOT.png
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const [url, greedyFile, shot, clusterShot] = process.argv.slice(2);
const greedy = readFileSync(greedyFile, "utf8");
const QUESTION = "Explain quantum computing in simple terms.";
let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log("ok   " + name); }
  else { failed++; console.log("FAIL " + name + (detail !== undefined ? ": " + JSON.stringify(detail) : "")); }
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
                                        args: ["--no-sandbox", "--disable-gpu"] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const pageErrors = [], consoleErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("model-name").textContent !== "connecting…");
  const model = await page.textContent("#model-name");
  check("the page loads and names the model from GET /v1/models", /qwen3-tiny/.test(model), model);

  // settings: greedy, 24 tokens, no system prompt
  await page.click("#toggle-settings");
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", "24");
  await page.fill("#system-prompt", "");

  // record every render of the answer while it streams
  await page.evaluate(() => {
    window.__renders = [];
    new MutationObserver(() => {
      const m = document.querySelector(".msg.assistant:last-child");
      const a = m && m.querySelector(".answer");
      if (a && m.dataset.state === "streaming") {
        const t = a.textContent;
        if (t && window.__renders[window.__renders.length - 1] !== t) window.__renders.push(t);
      }
    }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
  });
  await page.fill("#input", QUESTION);
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant[data-state]:not([data-state=streaming])", { timeout: 60000 });
  const state = await page.getAttribute(".msg.assistant", "data-state");
  const answer = await page.textContent(".msg.assistant .answer");
  const renders = await page.evaluate(() => window.__renders);
  check("the answer completes", state === "done", state);
  check("the answer streamed in (" + renders.length + " partial renders)",
        renders.length >= 12 && renders.every((r) => greedy.startsWith(r)), renders);
  check("the final answer equals cake run's greedy text", answer === greedy, { answer, greedy });
  const stats = await page.textContent(".msg.assistant .stats");
  check("tokens and tok/s are shown (" + stats + ")", /^24 tokens · [0-9.]+ tok\/s · [0-9.]+ s · length limit$/.test(stats), stats);
  const user = await page.textContent(".msg.user .body");
  check("the question is shown as sent", user === QUESTION, user);
  // by now the browser has asked for everything the page needs (a missing favicon logs a 404)
  const icon = await page.evaluate(() => { const l = document.querySelector("link[rel=icon]"); return l && l.getAttribute("href"); });
  check("no console error since the page loaded; the favicon is inline",
        consoleErrors.length === 0 && /^data:image\//.test(icon || ""), { consoleErrors, icon: (icon || "").slice(0, 30) });
  await page.screenshot({ path: shot, fullPage: true });

  // a long answer, stopped with the Stop button
  await page.fill("#max-tokens", "4000");
  await page.fill("#input", "Tell me a long story.");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => {
    const m = document.querySelectorAll(".msg.assistant")[1];
    const a = m && m.querySelector(".answer");
    return a && m.dataset.state === "streaming" && a.textContent.length > 20;
  }, null, { timeout: 60000 });
  await page.click("#stop");
  await page.waitForSelector(".msg.assistant:nth-of-type(4)[data-state=stopped]", { timeout: 10000 }).catch(() => {});
  const st2 = await page.evaluate(() => {
    const m = document.querySelectorAll(".msg.assistant")[1];
    return { state: m.dataset.state, stats: m.querySelector(".stats").textContent, send: !document.getElementById("send").disabled };
  });
  check("Stop ends a streaming answer", st2.state === "stopped" && /stopped/.test(st2.stats) && st2.send, st2);

  // the renderer: HTML escaped, minimal markdown, <think> split
  const md = await page.evaluate(() => window.cake.markdown("<script>alert(1)</script> **b** *i* `c<d>`\n\n- x\n- y\n\n```js\nif (a<b) {}\n```"));
  check("markdown escapes HTML and renders bold/italic/code/lists/fences",
        md === "<p>&lt;script&gt;alert(1)&lt;/script&gt; <strong>b</strong> <em>i</em> <code>c&lt;d&gt;</code></p>" +
               "<ul><li>x</li><li>y</li></ul><pre><code data-lang=\"js\">if (a&lt;b) {}</code></pre>", md);
  const th = await page.evaluate(() => [window.cake.splitThink("<think>\nhm</think>\n\nok", true),
                                        window.cake.splitThink("<think>still</thi", false),
                                        window.cake.splitThink("plain", false),
                                        window.cake.splitThink("<think>\n\n</think>\n\nHi", true)]);
  check("<think> is split from the answer; an empty one is no reasoning",
        JSON.stringify(th) === JSON.stringify([{ think: "hm", open: false, answer: "ok" },
                                               { think: "still", open: true, answer: "" },
                                               { think: null, open: false, answer: "plain" },
                                               { think: null, open: false, answer: "Hi" }]), th);
  const mdCases = [
    ["1. a\n\n2. b\n\n3. c", "<ol><li>a</li><li>b</li><li>c</li></ol>"],
    ["3. x\n4. y", '<ol start="3"><li>x</li><li>y</li></ol>'],
    ["1. a\n\ntext\n\n2. b", '<ol><li>a</li></ol><p>text</p><ol start="2"><li>b</li></ol>'],
    ["- a\n\n- b\n1. c", "<ul><li>a</li><li>b</li></ul><ol><li>c</li></ol>"],
    ["```\na ``` b\n```\nafter", "<pre><code>a ``` b</code></pre><p>after</p>"],
    ["say ```x\n<i>", "<p>say ```x<br>&lt;i&gt;</p>"],
    ["  ```py\n  if a:\n      b\n  ```", '<pre><code data-lang="py">if a:\n    b</code></pre>'],
    ["````\n```\n````", "<pre><code>```</code></pre>"],
    ["```\nopen <b>", "<pre><code>open &lt;b&gt;</code></pre>"],
    ["1. <img src=x onerror=alert(1)>", "<ol><li>&lt;img src=x onerror=alert(1)&gt;</li></ol>"],
  ];
  const mdGot = await page.evaluate((cases) => cases.map((c) => window.cake.markdown(c[0])), mdCases);
  const mdBad = mdCases.map((c, i) => ({ input: c[0], got: mdGot[i], want: c[1] })).filter((c) => c.got !== c.want);
  check("markdown: lists across blank lines, <ol start>, fences only at line start, still escaped", mdBad.length === 0, mdBad);

  // a reply with reasoning, canned through the browser's own network layer (the tiny model never thinks):
  // the <think> block is collapsed and dimmed, the answer rendered as markdown, usage taken from the chunk
  const sse = (o) => "data: " + JSON.stringify(o) + "\n\n";
  const delta = (d) => sse({ choices: [{ index: 0, delta: d, finish_reason: null }] });
  await page.route("**/v1/chat/completions", (route) => route.fulfill({
    status: 200, headers: { "Content-Type": "text/event-stream" },
    body: delta({ role: "assistant", content: "" }) + delta({ content: "<think>\nWeighing <b>options</b>" }) +
          delta({ content: "…\n</think>\n\n" }) + delta({ content: "The answer is **42**." }) +
          sse({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: { prompt_tokens: 9, completion_tokens: 7 } }) +
          "data: [DONE]\n\n" }), { times: 1 });
  await page.click("#new-chat");
  await page.fill("#input", "Think first.");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant[data-state=done]", { timeout: 10000 });
  const tk = await page.evaluate(() => {
    const m = document.querySelector(".msg.assistant"), d = m.querySelector("details.think");
    return d && { open: d.open, summary: d.querySelector("summary").textContent, reasoning: d.querySelector(".reasoning").textContent,
                  opacity: getComputedStyle(d).opacity, answer: m.querySelector(".answer").innerHTML,
                  stats: m.querySelector(".stats").textContent };
  });
  check("<think> shows as a collapsed, dimmed block; the answer as markdown; usage counted",
        tk && !tk.open && tk.summary === "thought" && tk.reasoning === "Weighing <b>options</b>…" && Number(tk.opacity) < 1 &&
        tk.answer === "<p>The answer is <strong>42</strong>.</p>" && /^7 tokens/.test(tk.stats), tk);

  // Qwen3 with thinking off sends an empty <think></think>: no reasoning block
  await page.route("**/v1/chat/completions", (route) => route.fulfill({
    status: 200, headers: { "Content-Type": "text/event-stream" },
    body: delta({ role: "assistant", content: "" }) + delta({ content: "<think>\n\n</think>\n\n" }) + delta({ content: "Hi" }) +
          sse({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) + "data: [DONE]\n\n" }), { times: 1 });
  await page.fill("#input", "Quick.");
  await page.press("#input", "Enter");
  await page.waitForFunction(() => document.querySelectorAll(".msg.assistant[data-state=done]").length === 2, null, { timeout: 10000 });
  const et = await page.evaluate(() => {
    const m = document.querySelectorAll(".msg.assistant")[1];
    return { think: m.querySelectorAll("details.think").length, answer: m.querySelector(".answer").innerHTML };
  });
  check("an empty <think></think> shows no reasoning block", et.think === 0 && et.answer === "<p>Hi</p>", et);

  // a chat endpoint that sends `events` and then hangs until the request is aborted (a model still thinking,
  // or not yet at its first token), in place of window.fetch for one request
  const hangOnce = (events) => page.evaluate((events) => {
    const real = window.fetch;
    window.fetch = (resource, init) => {
      window.fetch = real;
      const body = new ReadableStream({ start(c) {
        if (events) c.enqueue(new TextEncoder().encode(events));
        init.signal.addEventListener("abort", () => c.error(new DOMException("aborted", "AbortError")));
      } });
      return Promise.resolve(new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } }));
    };
  }, events);
  const lastReply = () => page.evaluate(() => {
    const users = document.querySelectorAll(".msg.user"), m = [...document.querySelectorAll(".msg.assistant")].pop();
    const d = m.querySelector("details.think"), u = users[users.length - 1];
    return { state: m.dataset.state, summary: d && d.querySelector("summary").textContent, stats: m.querySelector(".stats").textContent,
             reasoning: d && d.querySelector(".reasoning").textContent, cursor: m.querySelector(".answer").classList.contains("cursor"),
             unsent: u.classList.contains("unsent"), who: u.querySelector(".who").textContent };
  });
  const stopWhen = async (ready) => {
    await page.waitForFunction(ready, null, { timeout: 10000 });
    await page.click("#stop");
    await page.waitForFunction(() => { const m = [...document.querySelectorAll(".msg.assistant")].pop(); return m.dataset.state !== "streaming"; },
                               null, { timeout: 10000 });
    await page.waitForTimeout(100); /* a repaint queued before the stop must not undo the final render */
  };

  // stopped while reasoning: the summary says so
  await hangOnce(delta({ role: "assistant", content: "" }) + delta({ content: "<think>\nLet me see" }));
  await page.fill("#input", "Stop me while thinking.");
  await page.press("#input", "Enter");
  await stopWhen(() => { const s = document.querySelector(".msg.assistant:last-child details.think summary"); return s && s.textContent === "thinking…"; });
  const sr = await lastReply();
  check("a reply stopped while reasoning says 'thinking stopped'; with no answer its question is marked not sent",
        sr.state === "stopped" && sr.summary === "thinking stopped" && sr.reasoning === "Let me see" && !sr.cursor &&
        sr.unsent && sr.who === "you · not sent", sr);

  // stopped before the first token
  await hangOnce("");
  await page.fill("#input", "Never answered.");
  await page.press("#input", "Enter");
  await stopWhen(() => !document.getElementById("stop").disabled);
  const s0 = await lastReply();
  check("a reply stopped before its first token: its question is marked not sent",
        s0.state === "stopped" && /^0 tokens.*stopped$/.test(s0.stats) && s0.unsent, s0);

  // a request the server refuses, with a long unbroken URL as the question
  const longUrl = "https://example.com/" + "a1b2c3d4e5".repeat(40);
  await page.route("**/v1/chat/completions", (route) => route.fulfill({
    status: 413, contentType: "application/json",
    body: JSON.stringify({ error: { message: "request body too large", type: "invalid_request_error", code: "request_too_large" } }) }), { times: 1 });
  await page.fill("#input", longUrl);
  await page.press("#input", "Enter");
  await page.waitForFunction(() => [...document.querySelectorAll(".msg.assistant")].pop().dataset.state === "error", null, { timeout: 10000 });
  const fr = await lastReply();
  check("a refused request stays on the page, marked not sent", fr.unsent && fr.state === "error", fr);
  const wrap = await page.evaluate(() => {
    const box = document.getElementById("messages"), b = [...document.querySelectorAll(".msg.user .body")].pop();
    return { box: [box.scrollWidth, box.clientWidth], bubble: [b.scrollWidth, b.clientWidth] };
  });
  check("a long unbroken line wraps inside its bubble", wrap.box[0] <= wrap.box[1] && wrap.bubble[0] <= wrap.bubble[1], wrap);

  // the next request carries only the answered exchanges, as the page shows them
  await page.fill("#max-tokens", "3");
  const nextReq = page.waitForRequest((r) => r.url().endsWith("/v1/chat/completions"));
  await page.fill("#input", "Hi again.");
  await page.press("#input", "Enter");
  const sent = (await nextReq).postDataJSON().messages;
  await page.waitForFunction(() => [...document.querySelectorAll(".msg.assistant")].pop().dataset.state === "done", null, { timeout: 30000 });
  const wantSent = [{ role: "user", content: "Think first." }, { role: "assistant", content: "The answer is **42**." },
                    { role: "user", content: "Quick." }, { role: "assistant", content: "Hi" }, { role: "user", content: "Hi again." }];
  const unsent = await page.$$eval(".msg.user.unsent .body", (els) => els.map((e) => e.textContent));
  check("unanswered exchanges are left out of the next request, and only they are marked not sent",
        JSON.stringify(sent) === JSON.stringify(wantSent) &&
        JSON.stringify(unsent) === JSON.stringify(["Stop me while thinking.", "Never answered.", longUrl]), { sent, unsent });

  // cluster view
  const topo = await (await fetch(new URL("api/v1/topology", url))).json();
  await page.click("#tab-cluster");
  await page.waitForSelector(".node", { timeout: 10000 });
  const cards = await page.$$eval(".node", (els) => els.map((e) => ({ name: e.querySelector(".name").textContent, layers: e.dataset.layers })));
  const want = [topo.master, ...(topo.workers || [])].map((n) => ({
    name: n.name, layers: Array.isArray(n.layers) ? (n.layers[0] === n.layers[1] ? String(n.layers[0]) : n.layers[0] + "–" + n.layers[1]) : "" }));
  check("the cluster view shows master and workers with their layer ranges", JSON.stringify(cards) === JSON.stringify(want), { cards, want });
  check("the topology has the worker (layers 2-3 of 4)", topo.n_layers === 4 && cards.length === 2 && cards[1].layers === "2–3", cards);
  await page.screenshot({ path: clusterShot, fullPage: true });
  await page.click("#tab-chat");

  // the settings survive a reload; an API key typed in Settings is kept and sent as a Bearer token
  await page.fill("#system-prompt", "Be brief.\nVery.");
  await page.fill("#api-key", "sk-test-key");
  const seen = new Promise((resolve) => page.on("request", (r) => { if (r.url().endsWith("/v1/models")) resolve(r.headers()["authorization"]); }));
  await page.reload();
  const auth = await seen;
  check("the API key is stored and sent as Authorization: Bearer", auth === "Bearer sk-test-key", auth);
  const kept = await page.evaluate(() => ["temperature", "max-tokens", "system-prompt"].map((id) => document.getElementById(id).value));
  check("temperature, max tokens and system prompt survive a reload",
        JSON.stringify(kept) === JSON.stringify(["0", "3", "Be brief.\nVery."]), kept);
  await page.evaluate(() => localStorage.clear());

  // the model name in the header recovers from a failed start. A fake clock (page.clock) runs the page's
  // timers only when told, so each way back is seen on its own: the retry every few seconds, a new API key,
  // a reply.
  const modelPage = async (onModels) => {
    const p = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    p.on("pageerror", (e) => pageErrors.push(String(e)));
    await p.clock.install();
    await p.route("**/v1/models", onModels);
    await p.goto(url);
    return p;
  };
  const header = (p, re) => p.waitForFunction((re) => new RegExp(re).test(document.getElementById("model-name").textContent),
                                              re, { timeout: 5000 }).then(() => true, () => false);
  const fail = (route, status, message) => route.fulfill({ status: status, contentType: "application/json",
                                                           body: JSON.stringify({ error: { message: message } }) });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const advance = async (p, until) => { /* the page's clock by seconds until `until`: how many it took, at most 60 */
    for (let i = 0; i <= 60; i++) {
      if (await until()) return i;
      await p.clock.runFor(1000);
      await sleep(30);
    }
    return Infinity;
  };
  const named = (p) => () => p.evaluate(() => /qwen3-tiny/.test(document.getElementById("model-name").textContent));
  let loading = true, asked = 0;
  const p503 = await modelPage((r) => { asked++; return loading ? fail(r, 503, "the model is loading") : r.continue(); });
  const at503 = await header(p503, "^HTTP 503: the model is loading");
  const twice = await advance(p503, async () => asked >= 3); /* two retries */
  const still503 = await header(p503, "^HTTP 503");
  loading = false;
  const back = await advance(p503, named(p503));
  check("a 503 at load is shown, asked again every few seconds, and the model named once it has loaded",
        at503 && twice <= 10 && still503 && back <= 5, { at503, twice, still503, back, header: await p503.textContent("#model-name") });
  await p503.close();

  const p401 = await modelPage((r) => r.request().headers()["authorization"] === "Bearer good-key" ? r.continue() : fail(r, 401, "missing or invalid API key"));
  const at401 = await header(p401, "^HTTP 401: missing or invalid API key");
  const opened = !(await p401.evaluate(() => document.getElementById("settings").hidden));
  if (!opened) await p401.click("#toggle-settings");
  await p401.fill("#api-key", "good-key");
  await p401.clock.runFor(500); /* less than the retry period: the new key itself has the model asked for */
  check("a 401 at load opens Settings; the model is named as soon as the right key is typed",
        at401 && opened && await header(p401, "qwen3-tiny"), { at401, opened, header: await p401.textContent("#model-name") });
  await p401.close();

  loading = true;
  const pReply = await modelPage((r) => loading ? fail(r, 503, "the model is loading") : r.continue());
  const atReply = await header(pReply, "503");
  loading = false;
  await pReply.click("#toggle-settings");
  await pReply.fill("#max-tokens", "2");
  await pReply.fill("#input", "Hello?");
  await pReply.press("#input", "Enter");
  await pReply.waitForSelector(".msg.assistant[data-state=done]", { timeout: 30000 });
  check("after a reply the model is named at once", atReply && await header(pReply, "qwen3-tiny"),
        { atReply, header: await pReply.textContent("#model-name") });
  await pReply.close();

  // a phone: Settings covers the chat, which keeps its width and its Send and Stop buttons
  const phone = await browser.newPage({ viewport: { width: 375, height: 700 } });
  phone.on("pageerror", (e) => pageErrors.push(String(e)));
  await phone.goto(url);
  await phone.waitForFunction(() => document.getElementById("model-name").textContent !== "connecting…");
  // the header fits: every control inside the screen, the model name readable (not squeezed away)
  const head = await phone.evaluate(() => {
    const box = (el) => { const r = el.getBoundingClientRect(); return { left: Math.round(r.left), right: Math.round(r.right),
                                                                         width: Math.round(r.width) }; };
    const name = document.getElementById("model-name");
    return { page: document.documentElement.scrollWidth, name: box(name), text: name.textContent,
             clipped: name.scrollWidth > name.clientWidth + 1,
             controls: [...document.querySelectorAll("header button")].map(box) };
  });
  check("on a phone, the header fits the screen and shows the model's name",
        head.page <= 375 && head.controls.every((b) => b.left >= 0 && b.right <= 375) &&
        head.name.right <= 375 && head.name.width >= 80 && !head.clipped, head);
  await phone.screenshot({ path: shot.replace(/\.png$/, "-phone.png") });
  await phone.click("#toggle-settings");
  const boxes = await phone.evaluate(() => Object.fromEntries(["chat-view", "send", "stop", "settings"].map((id) => {
    const r = document.getElementById(id).getBoundingClientRect();
    return [id, { left: Math.round(r.left), right: Math.round(r.right), width: Math.round(r.width) }];
  })));
  check("on a phone, open Settings covers the chat instead of squeezing it",
        boxes["chat-view"].width === 375 && boxes.send.right <= 375 && boxes.stop.right <= 375 &&
        boxes.settings.width > 200 && boxes.settings.right <= 375, boxes);
  await phone.close();

  check("no script errors on the page", pageErrors.length === 0, pageErrors);
} catch (e) {
  failed++;
  console.log("FAIL " + (e.stack || e));
} finally {
  await browser.close();
}
console.log(passed + " passed, " + failed + " failed");
process.exit(failed ? 1 : 0);
