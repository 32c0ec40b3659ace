// Walks pages in Debian's Chromium (playwright-core), as a person would:
// for each visit, at desktop and phone width, it opens the page (or submits
// a form from one of ours), checks the status and the text, runs axe-core
// (WCAG 2.2 A and AA), records every Content-Security-Policy violation and
// takes a screenshot. Prints one JSON report; exits 1 on any finding.
//
// usage: node pages.mjs SPEC.json
// SPEC: {"base", "cookies": [{"name", "value"}], "out": "dir for PNGs",
//        "visits": [{"name", "path"} | {"name", "from", "post": {"action", "fields"}},
//                   with "status" and "text" to expect (and "absent", text that must not show),
//                   "only": "desktop" | "phone" for a visit that changes something once,
//                   "fits": true for a page that must not scroll sideways (it names what sticks out),
//                   and "steps", what the person then does, in order:
//                     {"select": css, "value" or "label"} | {"fill": css, "value"} | {"click": css, "navigates": bool}
//                     | {"wait_url": part of the URL} | {"wait_text": text, "no_reload": bool}
//                     | {"wait_live": true} (the page's live stream is open)
//                     | {"request": {"url", "method", "headers", "body"}} (someone else acts, outside the page)
//                     | {"download": css, "save": file name in "out", "starts": the file's first bytes}]}

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const viewports = { desktop: { width: 1366, height: 768 }, phone: { width: 390, height: 844 } };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const report = [];
let failed = false;
try {
  for (const [width, viewport] of Object.entries(viewports)) {
    const context = await browser.newContext({ viewport });
    const host = new URL(spec.base).hostname;
    await context.addCookies(spec.cookies.map((c) => ({ ...c, domain: host, path: "/" })));
    // Violations are reported to the page as events; keep them where we can read them.
    await context.addInitScript(() => {
      window.__csp = [];
      document.addEventListener("securitypolicyviolation", (e) =>
        window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
      // htmx's SSE extension says when a page's live stream is open.
      document.addEventListener("htmx:sseOpen", () => { window.__live = true; });
    });
    for (const visit of spec.visits) {
      // A visit that changes something once (creating a workspace) runs at one width only.
      if (visit.only && visit.only !== width) continue;
      const page = await context.newPage();
      const logged = [];
      page.on("console", (m) => { if (/Content.Security.Policy/i.test(m.text())) logged.push(m.text()); });
      let response;
      if (visit.post) {
        await page.goto(spec.base + visit.from);
        [response] = await Promise.all([
          page.waitForNavigation(),
          page.evaluate(({ action, fields }) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            for (const [name, value] of Object.entries(fields)) {
              // An array is a field sent several times (checkboxes).
              for (const one of Array.isArray(value) ? value : [value]) {
                const input = document.createElement("input");
                input.type = "hidden";
                input.name = name;
                input.value = one;
                form.append(input);
              }
            }
            document.body.append(form);
            form.submit();
          }, visit.post),
        ]);
      } else {
        response = await page.goto(spec.base + visit.path);
      }
      const problems = [];
      let loads = 0;
      page.on("load", () => { loads += 1; });
      for (const step of visit.steps ?? []) {
        try {
          if (step.select) await page.selectOption(step.select, step.label !== undefined ? { label: step.label } : step.value);
          else if (step.fill) await page.fill(step.fill, step.value);
          else if (step.click && step.navigates) {
            [response] = await Promise.all([page.waitForNavigation(), page.click(step.click)]);
          } else if (step.click) await page.click(step.click);
          else if (step.wait_url) await page.waitForURL((url) => url.href.includes(step.wait_url), { timeout: 20000 });
          else if (step.wait_live) await page.waitForFunction(() => window.__live === true, null, { timeout: 20000 });
          else if (step.wait_text) {
            const before = loads;
            await page.waitForFunction((t) => document.body.innerText.includes(t), step.wait_text, { timeout: 20000 });
            if (step.no_reload && loads !== before) problems.push(`the page reloaded to show ${JSON.stringify(step.wait_text)}`);
          } else if (step.download) {
            const [download] = await Promise.all([page.waitForEvent("download", { timeout: 20000 }), page.click(step.download)]);
            const saved = `${spec.out}/${step.save}`;
            await download.saveAs(saved);
            const head = readFileSync(saved).subarray(0, (step.starts ?? "").length).toString("latin1");
            if (step.starts && head !== step.starts) problems.push(`download ${step.download}: starts ${JSON.stringify(head)}`);
          } else if (step.request) {
            const { url, method, headers, body } = step.request;
            const answer = await fetch(spec.base + url, { method: method ?? "POST", headers, body: JSON.stringify(body) });
            if (!answer.ok) problems.push(`request ${url}: ${answer.status} ${await answer.text()}`);
          }
        } catch (error) {
          problems.push(`step ${JSON.stringify(step)}: ${error.message.split("\n")[0]}`);
        }
      }
      const status = response?.status();
      const text = await page.locator("body").innerText();
      await page.evaluate(axeSource);
      const axe = await page.evaluate(() =>
        window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }));
      const csp = [...(await page.evaluate(() => window.__csp)), ...logged];
      const shot = `${spec.out}/${visit.name}-${width}.png`;
      await page.screenshot({ path: shot, fullPage: true });
      if (visit.fits) {
        const wide = await page.evaluate(() => {
          const limit = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth <= limit) return [];
          return [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > limit + 1 && ![...e.children].some((c) => c.getBoundingClientRect().right > limit + 1))
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className ? "." + String(e.className).split(" ").join(".") : ""} (${Math.round(e.getBoundingClientRect().right)}px)`);
        });
        if (wide.length) problems.push(`wider than the screen: ${wide.join(", ")}`);
      }
      if (visit.status && status !== visit.status) problems.push(`status ${status}, expected ${visit.status}`);
      for (const wanted of visit.text ?? []) if (!text.includes(wanted)) problems.push(`no text ${JSON.stringify(wanted)}`);
      for (const unwanted of visit.absent ?? []) if (text.includes(unwanted)) problems.push(`text ${JSON.stringify(unwanted)} should not show`);
      for (const v of axe.violations) problems.push(`axe ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
      for (const c of csp) problems.push(`CSP: ${c}`);
      failed ||= problems.length > 0;
      report.push({ visit: visit.name, width, url: page.url(), status, axe_passes: axe.passes.length, problems, screenshot: shot });
      await page.close();
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report, null, 2));
process.exit(failed ? 1 : 0);
