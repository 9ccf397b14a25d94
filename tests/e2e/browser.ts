import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export const CONSOLE_DIR = path.resolve(import.meta.dirname, "../../console/dist");
export const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-results/e2e");

/** Debian's Chromium (`apt-get install chromium`), or CHROMIUM_PATH. */
export function chromiumPath(): string {
  const p = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(p)) throw new Error(`no Chromium at ${p}: run \`apt-get install -y chromium\` or set CHROMIUM_PATH`);
  return p;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A browser context for Tether at `origin`: the dev CA is not trusted by Chromium (hence
 * ignoreHTTPSErrors), and with `cert` the browser presents that client certificate, as a person
 * who imported their certificate would.
 */
export function newContext(browser: Browser, origin: string, cert?: { certPath: string; keyPath: string }): Promise<BrowserContext> {
  return browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    clientCertificates: cert ? [{ origin, ...cert }] : [],
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
