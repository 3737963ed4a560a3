// examples/html/index.html in headless Chromium, against the example
// gateway that scripts/test-browser.sh started (examples/nginx.conf).
//
// Environment: BASE_URL (nginx), NATS_URL, NATS_PEER (build/t/nats_peer,
// a libnats program), CTL (reload | nats-restart), ARTIFACTS (a directory
// for page.png), CHROMIUM (/usr/bin/chromium).
//
// Every check throws with what it expected and what the page showed.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const path = require("path");
const zlib = require("zlib");
const { execFileSync } = require("child_process");
const puppeteer = require("puppeteer-core");

const BASE = process.env.BASE_URL;
const NATS_URL = process.env.NATS_URL;
const PEER = process.env.NATS_PEER;
const CTL = process.env.CTL;
const OUT = process.env.ARTIFACTS;
const TAG = crypto.randomBytes(3).toString("hex");   // this run's messages

for (const [k, v] of Object.entries({ BASE, NATS_URL, PEER, CTL, OUT })) {
    if (!v) throw new Error(`page.test.js: ${k} is not set`);
}

function log(...args) {
    console.error("page.test:", ...args);
}

const pageErrors = [];    // uncaught errors of the page's script

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// polls get() until ok(value); throws "what" with the last value
async function waitFor(what, get, ok, timeout = 10000) {
    const end = Date.now() + timeout;
    let last;
    for (;;) {
        last = await get();
        if (ok(last)) return last;
        if (Date.now() > end) {
            throw new Error(`${what}: not within ${timeout} ms; last seen: `
                            + JSON.stringify(last));
        }
        await sleep(100);
    }
}

// POSTs over one kept-alive connection: one nginx worker, so one NATS
// connection, so the server sees the messages in the order sent
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(urlPath, body) {
    return new Promise((resolve, reject) => {
        const req = http.request(BASE + urlPath, {
            method: "POST", agent,
            headers: { "Content-Length": Buffer.byteLength(body) },
        }, (res) => {
            let data = "";
            res.on("data", (d) => { data += d; });
            res.on("end", () => resolve({ status: res.statusCode, body: data }));
        });
        req.on("error", reject);
        req.end(body);
    });
}

async function publishHttp(text) {
    const r = await post("/feed?topic=news", text);
    if (r.status !== 202) {
        throw new Error(`POST /feed: ${r.status} ${r.body}`);
    }
}

// one libnats connection per call: it flushes before it exits, so calls
// one after another reach the server in order
function publishLibnats(text) {
    execFileSync(PEER, ["publish", NATS_URL, "feed.news", text],
                 { stdio: ["ignore", "ignore", "inherit"], timeout: 10000 });
}

function ctl(what) {
    log(`ctl ${what}`);
    execFileSync("bash", [CTL, what],
                 { stdio: ["ignore", "inherit", "inherit"], timeout: 30000 });
}

// the feed as the page renders it, oldest first (the page puts the newest
// on top), each item's rendered text
async function shown(page) {
    const items = await page.$$eval("#events li", (lis) =>
        lis.map((li) => li.innerText));
    return items.reverse();
}

// the messages of this run, oldest first
async function ours(page) {
    return (await shown(page)).filter((t) => t.includes(TAG));
}

function same(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
}

async function expectFeed(pages, expected, what, timeout = 10000) {
    for (const [name, page] of pages) {
        await waitFor(`${what}: ${name} shows ${JSON.stringify(expected)}`,
                      () => ours(page), (got) => same(got, expected), timeout);
    }
    log(`ok: ${what} (${pages.length} tabs, ${expected.length} events)`);
}

async function state(page) {
    return page.$eval("#state", (e) => e.textContent);
}

// how many times the page's EventSource opened (counted by a wrapper
// installed before the page's script runs)
async function opens(page) {
    return page.evaluate(() => window.__feedOpens);
}

async function openPage(browser, name) {
    const page = await browser.newPage();
    await page.setViewport({ width: 900, height: 900 });
    page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
    await page.evaluateOnNewDocument(() => {
        window.__feedOpens = 0;
        const Native = window.EventSource;
        window.EventSource = function (...args) {
            const es = new Native(...args);
            es.addEventListener("open", () => { window.__feedOpens += 1; });
            return es;
        };
        window.EventSource.prototype = Native.prototype;
    });
    const res = await page.goto(BASE + "/", { waitUntil: "load" });
    if (!res || ![200, 304].includes(res.status())) {
        throw new Error(`GET / : ${res && res.status()}`);
    }
    await waitFor(`${name}: #state says connected`, () => state(page),
                  (s) => s === "connected");
    return page;
}

// --- PNG: decode (8-bit RGB/RGBA, non-interlaced: what Chromium writes)
// and measure how much of the image differs from its background
function pngStats(file) {
    const buf = fs.readFileSync(file);
    if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error(`${file}: not a PNG`);
    let off = 8, width, height, depth, type, interlace;
    const idat = [];
    while (off < buf.length) {
        const len = buf.readUInt32BE(off);
        const kind = buf.toString("ascii", off + 4, off + 8);
        const data = buf.subarray(off + 8, off + 8 + len);
        if (kind === "IHDR") {
            width = data.readUInt32BE(0);
            height = data.readUInt32BE(4);
            depth = data[8]; type = data[9]; interlace = data[12];
        } else if (kind === "IDAT") {
            idat.push(data);
        }
        off += 12 + len;
    }
    const bpp = { 2: 3, 6: 4 }[type];
    if (depth !== 8 || !bpp || interlace !== 0) {
        throw new Error(`${file}: unsupported PNG (depth ${depth}, type ${type})`);
    }
    const raw = zlib.inflateSync(Buffer.concat(idat));
    const stride = width * bpp;
    const px = Buffer.alloc(stride * height);
    for (let y = 0; y < height; y++) {
        const f = raw[y * (stride + 1)];
        const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
        const row = px.subarray(y * stride, (y + 1) * stride);
        const up = y ? px.subarray((y - 1) * stride, y * stride) : null;
        for (let i = 0; i < stride; i++) {
            const a = i >= bpp ? row[i - bpp] : 0;
            const b = up ? up[i] : 0;
            const c = up && i >= bpp ? up[i - bpp] : 0;
            let v;
            switch (f) {
            case 0: v = 0; break;
            case 1: v = a; break;
            case 2: v = b; break;
            case 3: v = (a + b) >> 1; break;
            case 4: {
                const p = a + b - c;
                const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
                v = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
                break;
            }
            default: throw new Error(`${file}: bad PNG filter ${f}`);
            }
            row[i] = (src[i] + v) & 0xff;
        }
    }
    // the background: the top-left pixel; count the pixels that differ
    let differ = 0;
    const colors = new Set();
    for (let i = 0; i < px.length; i += bpp) {
        if (px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2]) differ++;
        if (colors.size < 1000) colors.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
    }
    return { width, height, differ: differ / (width * height), colors: colors.size };
}

async function main() {
    const t0 = Date.now();
    const browser = await puppeteer.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        headless: true,
        protocolTimeout: 30000,
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    let a;
    try {
        a = await openPage(browser, "tab 1");
        const b = await openPage(browser, "tab 2");
        const tabs = [["tab 1", a], ["tab 2", b]];
        const expected = [];

        // 1. over HTTP (the gateway's /feed), in order
        for (let i = 1; i <= 5; i++) {
            const text = `http ${i} ${TAG}`;
            await publishHttp(text);
            expected.push(text);
        }
        await expectFeed(tabs, expected, "events published over HTTP");

        // the page's own form (tab 2 sends, both show it)
        const typed = `typed in the page ${TAG}`;
        await b.bringToFront();
        await b.type("#text", typed);
        await b.click("#send button");
        expected.push(typed);
        await expectFeed(tabs, expected, "an event sent from the page's form");
        const left = await b.$eval("#text", (e) => e.value);
        if (left !== "") throw new Error(`#text not cleared after sending: ${left}`);

        // 2. from libnats, in order
        for (let i = 1; i <= 3; i++) {
            const text = `libnats ${i} ${TAG}`;
            publishLibnats(text);
            expected.push(text);
        }
        await expectFeed(tabs, expected, "events published from libnats");

        // 3. a multi-line message: one item, its lines kept
        const multi = `first line ${TAG}\nsecond line\nthird line`;
        await publishHttp(multi);
        expected.push(multi);
        await expectFeed(tabs, expected, "a multi-line message");

        // 4. nginx -s reload: the old workers go, the pages connect again
        const before = [await opens(a), await opens(b)];
        ctl("reload");
        for (const [i, [name, page]] of tabs.entries()) {
            await waitFor(`${name}: the feed opens again after nginx -s reload`,
                          () => opens(page), (n) => n > before[i], 30000);
            await waitFor(`${name}: #state says connected after the reload`,
                          () => state(page), (s) => s === "connected");
        }
        const afterReload = `after reload ${TAG}`;
        await publishHttp(afterReload);
        expected.push(afterReload);
        await expectFeed(tabs, expected, "an event after nginx -s reload");

        // 5. nats-server stops and starts again on its port: the workers
        // reconnect and resubscribe; messages published while a worker is
        // still reconnecting may be lost (NATS core), so publish a marker
        // each second until both tabs show one, then a sequence in order
        ctl("nats-restart");
        let k = 0, marker;
        await waitFor("a marker published after the nats-server restart"
                      + " appears on both tabs", async () => {
            k++;
            marker = `after restart ${k} ${TAG}`;
            // a refused publish (502 while reconnecting) is retried too
            await post("/feed?topic=news", marker).catch(() => {});
            await sleep(900);
            const seen = [];
            for (const [, page] of tabs) seen.push((await ours(page)).at(-1));
            return seen;
        }, (seen) => seen.every((s) => s === marker), 30000);
        // what each tab got since the restart: markers only, increasing,
        // the last one included (a tab whose worker was still
        // resubscribing missed the earlier ones)
        const since = [];
        for (const [name, page] of tabs) {
            const got = (await ours(page)).slice(expected.length);
            const nums = got.map((t) => /^after restart (\d+) /.exec(t));
            if (!got.length || got.at(-1) !== marker
                || nums.some((m, i) => !m
                    || (i > 0 && Number(m[1]) <= Number(nums[i - 1][1])))) {
                throw new Error(`${name}: after the restart, expected markers`
                                + ` in order up to ${JSON.stringify(marker)},`
                                + ` got ${JSON.stringify(got)}`);
            }
            since.push(got);
        }
        log(`ok: the feed is back after the nats-server restart (marker ${k};`
            + ` the tabs saw markers ${since.map((g) => g.length).join(" and ")})`);
        const after = [];
        for (let i = 1; i <= 3; i++) {
            const text = `restarted ${i} ${TAG}`;
            await publishHttp(text);
            after.push(text);
        }
        publishLibnats(`restarted libnats ${TAG}`);
        after.push(`restarted libnats ${TAG}`);
        for (const [i, tab] of tabs.entries()) {
            await expectFeed([tab], expected.concat(since[i], after),
                             `events after the nats-server restart (${tab[0]})`);
        }

        // 6. a file uploaded from the page, then downloaded through its link
        const name = `upload-${TAG}.bin`;
        const file = path.join(OUT, name);
        const content = crypto.randomBytes(200 * 1024 + 17);
        fs.writeFileSync(file, content);
        // the tab in front (a background tab's page can stall CDP calls)
        await a.bringToFront();
        const input = await a.$("#file");
        await input.uploadFile(file);
        await a.click("#upload button");
        await waitFor("#fstate after the upload", () =>
            a.$eval("#fstate", (e) => e.textContent),
            (s) => s === `stored ${name}`, 20000);
        const entry = await waitFor(`${name} in the page's file list`, () =>
            a.$$eval("#files li", (lis) => lis.map((li) => ({
                text: li.innerText,
                href: li.querySelector("a") && li.querySelector("a").href,
            }))), (list) => list.some((e) => e.text.startsWith(name + " ")));
        const item = entry.find((e) => e.text.startsWith(name + " "));
        if (item.text !== `${name} (${content.length} bytes)`) {
            throw new Error(`file list entry: ${JSON.stringify(item.text)}`);
        }
        const got = await a.evaluate(async (href) => {
            const r = await fetch(href);
            const bytes = new Uint8Array(await r.arrayBuffer());
            const digest = await crypto.subtle.digest("SHA-256", bytes);
            return { status: r.status, length: bytes.length,
                     sha256: [...new Uint8Array(digest)]
                         .map((x) => x.toString(16).padStart(2, "0")).join("") };
        }, item.href);
        const want = crypto.createHash("sha256").update(content).digest("hex");
        if (got.status !== 200 || got.length !== content.length || got.sha256 !== want) {
            throw new Error(`download of ${item.href}: ${JSON.stringify(got)},`
                            + ` expected 200, ${content.length} bytes, sha256 ${want}`);
        }
        log(`ok: uploaded ${name} from the page, listed, downloaded intact`);

        // 7. a screenshot that is not blank
        const png = path.join(OUT, "page.png");
        await a.screenshot({ path: png, fullPage: true });
        const st = pngStats(png);
        log(`screenshot ${png}: ${st.width}x${st.height}, ${st.colors} colors,`
            + ` ${(st.differ * 100).toFixed(1)}% non-background`);
        if (st.colors < 3 || st.differ < 0.01) {
            throw new Error(`${png} looks blank (${st.colors} colors,`
                            + ` ${(st.differ * 100).toFixed(2)}% non-background)`);
        }
        if (pageErrors.length) {
            throw new Error(`the page's script failed: ${pageErrors.join("; ")}`);
        }
        log(`PASS in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
        if (a) {
            await a.screenshot({ path: path.join(OUT, "failure.png"), fullPage: true })
                .catch(() => {});
        }
        throw e;
    } finally {
        agent.destroy();
        await browser.close();
    }
}

main().catch((e) => {
    console.error(`page.test: FAIL: ${e.message}`);
    process.exit(1);
});
