// ui_test.mjs — drives cake's web UI in Debian's headless chromium with playwright-core, the way a person
// uses it: sets temperature 0 and 24 max tokens in Settings, sends the acceptance question, watches the
// answer stream in (several distinct partial renders while the message is still streaming), checks the
// final text equals the greedy reference and the token count/tok/s line, stops a long answer with the
// Stop button, checks the markdown renderer escapes HTML and the <think> split, renders a canned reply with
// reasoning (served through page.route: the tiny model never thinks) as a collapsed dim block, checks the
// cluster view against GET /api/v1/topology, and that an API key typed in Settings is sent as a Bearer
// token. Saves screenshots.
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
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
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
  // the tiny model writes 24 tokens in a few milliseconds, which can reach the page in one read: throttle the
  // download (DevTools network emulation) so the stream (about 4 KB of events) arrives over a few seconds, as
  // from a real model; at 4000 bytes/s it once came in a single read (the emulation's first burst)
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions",
                 { offline: false, latency: 0, downloadThroughput: 1200, uploadThroughput: -1 });
  await page.fill("#input", QUESTION);
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.assistant[data-state]:not([data-state=streaming])", { timeout: 60000 });
  await cdp.send("Network.emulateNetworkConditions",
                 { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  const state = await page.getAttribute(".msg.assistant", "data-state");
  const answer = await page.textContent(".msg.assistant .answer");
  const renders = await page.evaluate(() => window.__renders);
  check("the answer completes", state === "done", state);
  check("the answer streamed in (" + renders.length + " partial renders)",
        renders.length >= 2 && renders.every((r) => greedy.startsWith(r)), renders);
  check("the final answer equals cake run's greedy text", answer === greedy, { answer, greedy });
  const stats = await page.textContent(".msg.assistant .stats");
  check("tokens and tok/s are shown (" + stats + ")", /^24 tokens · [0-9.]+ tok\/s · [0-9.]+ s · length limit$/.test(stats), stats);
  const user = await page.textContent(".msg.user .body");
  check("the question is shown as sent", user === QUESTION, user);
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
                                        window.cake.splitThink("plain", false)]);
  check("<think> is split from the answer",
        JSON.stringify(th) === JSON.stringify([{ think: "hm", open: false, answer: "ok" },
                                               { think: "still", open: true, answer: "" },
                                               { think: null, open: false, answer: "plain" }]), th);

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

  // an API key typed in Settings is kept and sent as a Bearer token
  await page.fill("#api-key", "sk-test-key");
  const seen = new Promise((resolve) => page.on("request", (r) => { if (r.url().endsWith("/v1/models")) resolve(r.headers()["authorization"]); }));
  await page.reload();
  const auth = await seen;
  check("the API key is stored and sent as Authorization: Bearer", auth === "Bearer sk-test-key", auth);
  await page.evaluate(() => localStorage.removeItem("cake.apiKey"));
  check("no script errors on the page", pageErrors.length === 0, pageErrors);
} catch (e) {
  failed++;
  console.log("FAIL " + (e.stack || e));
} finally {
  await browser.close();
}
console.log(passed + " passed, " + failed + " failed");
process.exit(failed ? 1 : 0);
