import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CertificateService } from "../../gen/tether/v1/certificate_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { ProductKind } from "../../gen/tether/v1/device_pb.js";
import { RuleService } from "../../gen/tether/v1/rule_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { ThermostatMode } from "../../gen/tether/v1/thermostat_pb.js";
import type { TetherDevice } from "../../src/device/tether-device.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { coffeeSim, eventually, ledSim } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";
import { CONSOLE_DIR, launchChromium, newContext, screenshot } from "./browser.js";

/**
 * The web console in Chromium against a real Tether (embedded stack) with simulated devices. The
 * browser signs in with the admin client certificate (and, in the last tests, with a password and
 * no certificate), and every change is observed on the page without a reload. Screenshots go to test-results/e2e/.
 */
describe("web console", () => {
  let s: TestStack;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const devices: TetherDevice[] = [];
  let coffee: TetherDevice;

  beforeAll(async () => {
    s = await startTestStack({ TETHER_CONSOLE_DIR: CONSOLE_DIR });
    const api = connectClient(s, DeviceService, "connect");
    await api.createDevice({
      deviceId: "e2e-coffee",
      device: { displayName: "Kitchen coffee", labels: { room: "kitchen" }, kind: { case: "coffeeMachine", value: {} } },
    });
    await api.createDevice({ deviceId: "e2e-led", device: { labels: { room: "office" }, kind: { case: "led", value: { desired: { power: true } } } } });
    await api.createDevice({ deviceId: "e2e-offline-led", device: { kind: { case: "led", value: {} } } });
    coffee = (await coffeeSim(s, "e2e-coffee", { brewMs: 2000 })).device;
    devices.push(coffee, (await ledSim(s, "e2e-led")).device);
    browser = await launchChromium();
    const certs = path.join(s.dir, "certs");
    ctx = await newContext(browser, s.baseUrl, { certPath: path.join(certs, "admin.crt"), keyPath: path.join(certs, "admin.key") });
    page = await ctx.newPage();
    page.setDefaultTimeout(30_000);
  });

  afterAll(async () => {
    await browser?.close();
    for (const d of devices) await d.close();
    await s?.cleanup();
  });

  /** Counts full page loads, to prove that live changes arrive without a reload. */
  function countLoads(p: Page): () => number {
    let loads = 0;
    p.on("load", () => loads++);
    return () => loads;
  }

  it("signs in with the client certificate and lists the fleet with live online state", async () => {
    await page.goto(`${s.baseUrl}/`);
    await page.locator('tr[data-device="e2e-coffee"]').waitFor();
    await page.locator('.who:has-text("client certificate")').waitFor();
    await expect.poll(() => page.locator('tr[data-device="e2e-led"] .online-state').textContent(), { timeout: 30_000 }).toBe("online");
    expect(await page.locator('tr[data-device="e2e-offline-led"] .online-state').textContent()).toBe("offline");

    // Filters: kind and online, from the URL-backed form.
    await page.selectOption('select[name="kind"]', "led");
    await page.selectOption('select[name="online"]', "true");
    await expect
      .poll(() => page.locator("tr[data-device]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-device"))), { timeout: 30_000 })
      .toEqual(["e2e-led"]);
    await screenshot(page, "fleet-filtered");
    await page.goto(`${s.baseUrl}/`);
    await page.locator('tr[data-device="e2e-offline-led"]').waitFor();
    await screenshot(page, "fleet");
  });

  it("keeps the fleet current through WatchDevices: new, changed and deleted devices, without polling or reloads", async () => {
    await page.goto(`${s.baseUrl}/`);
    await page.locator('tr[data-device="e2e-coffee"]').waitFor();
    const loads = countLoads(page);
    const lists: string[] = [];
    const onRequest = (r: { url(): string }) => r.url().endsWith("/tether.v1.DeviceService/ListDevices") && lists.push(r.url());
    page.on("request", onRequest);
    try {
      const api = connectClient(s, DeviceService, "connect");
      await api.createDevice({ deviceId: "e2e-live-led", device: { labels: { room: "attic" }, kind: { case: "led", value: {} } } });
      await page.locator('tr[data-device="e2e-live-led"]').waitFor();
      await api.updateDevice({ device: { name: "devices/e2e-live-led", labels: { room: "cellar" } }, updateMask: { paths: ["labels"] } });
      await page.locator('tr[data-device="e2e-live-led"] .chip:has-text("room=cellar")').waitFor();
      await screenshot(page, "fleet-live");
      await api.deleteDevice({ name: "devices/e2e-live-led" });
      await page.locator('tr[data-device="e2e-live-led"]').waitFor({ state: "detached" });
      expect(loads()).toBe(0);
      // Listed once when the page opened; no polling since.
      expect(lists).toEqual([]);
    } finally {
      page.off("request", onRequest);
    }
  });

  it("brews on the simulated coffee machine and shows the task reach SUCCEEDED live", async () => {
    await page.goto(`${s.baseUrl}/devices/e2e-coffee`);
    const loads = countLoads(page);
    await page.locator('[data-controls="coffee_machine"]').waitFor();
    await page.selectOption('select[name="recipe"]', { label: "latte" });
    await page.selectOption('select[name="size"]', { label: "large" });
    await page.click('button[name="brew"]');
    const row = page.locator('tr[data-task]:has-text("brew latte:large")');
    await row.waitFor();
    await expect.poll(() => row.getAttribute("data-state"), { timeout: 60_000 }).toBe("SUCCEEDED");
    expect(await row.textContent()).toContain("250 ml");
    expect(loads()).toBe(0);
    await screenshot(page, "coffee-brew-succeeded");
  });

  it("lists the device's certificates from CertificateService, revoked ones marked", async () => {
    const certs = connectClient(s, CertificateService, "connect");
    const first = await certs.createCertificate({ parent: "devices/e2e-coffee", generateKey: true });
    const second = await certs.createCertificate({ parent: "devices/e2e-coffee", generateKey: true });
    await certs.revokeCertificate({ name: first.certificate!.name });
    await page.goto(`${s.baseUrl}/devices/e2e-coffee`);
    const panel = page.locator("section.certificates");
    await panel.locator(`tr:has-text("${second.certificate!.serialNumber}")`).waitFor();
    expect(await panel.locator(`tr:has-text("${second.certificate!.serialNumber}")`).textContent()).toContain("ACTIVE");
    expect(await panel.locator(`tr:has-text("${first.certificate!.serialNumber}")`).textContent()).toContain("REVOKED");
    await screenshot(page, "certificates");
  });

  it("changes an LED's color and shows the reported state follow", async () => {
    await page.goto(`${s.baseUrl}/devices/e2e-led`);
    const loads = countLoads(page);
    await page.locator('[data-controls="led"]').waitFor();
    await page.locator('input[name="color"]').fill("#ff8800");
    await expect.poll(() => page.locator('tr[data-field="color"] td.desired').textContent(), { timeout: 30_000 }).toContain("#ff8800");
    await expect.poll(() => page.locator('tr[data-field="color"] td.reported').textContent(), { timeout: 60_000 }).toContain("#ff8800");
    expect(loads()).toBe(0);
    await screenshot(page, "led-color-reported");
  });

  it("shows a thermostat's controls: the setpoint and mode change its desired state, Boost creates a task", async () => {
    // No simulator: only what the console asks of Tether is checked, through the API.
    const api = connectClient(s, DeviceService, "connect");
    await api.createDevice({
      deviceId: "e2e-thermostat",
      device: { kind: { case: "thermostat", value: { desired: { setpointCelsius: 20, mode: ThermostatMode.HEAT } } } },
    });
    const desired = async () => {
      const d = await api.getDevice({ name: "devices/e2e-thermostat" });
      return d.kind.case === "thermostat" ? d.kind.value.desired : undefined;
    };
    await page.goto(`${s.baseUrl}/devices/e2e-thermostat`);
    const controls = page.locator('[data-controls="thermostat"]');
    await controls.waitFor();
    expect(await page.inputValue('input[name="setpoint"]')).toBe("20");
    expect(await page.locator('tr[data-field="setpoint"] td.desired').textContent()).toBe("20 °C");

    await page.fill('input[name="setpoint"]', "22.5");
    await page.press('input[name="setpoint"]', "Enter");
    await eventually(async () => (await desired())?.setpointCelsius === 22.5, 30_000, "the desired setpoint to become 22.5");
    await expect.poll(() => page.locator('tr[data-field="setpoint"] td.desired').textContent(), { timeout: 30_000 }).toBe("22.5 °C");
    expect((await desired())?.mode).toBe(ThermostatMode.HEAT); // one field at a time: the mode stays

    await controls.locator('select[name="mode"]').selectOption({ label: "cool" });
    await eventually(async () => (await desired())?.mode === ThermostatMode.COOL, 30_000, "the desired mode to become cool");
    expect((await desired())?.setpointCelsius).toBe(22.5);

    await page.fill('input[name="boost-minutes"]', "15");
    await page.click('button[name="boost"]');
    await page.locator('tr[data-task]:has-text("boost 15")').waitFor();
    expect(await page.locator('tr[data-task]:has-text("boost 15") td.priority').textContent()).toBe("5"); // unset: the default
    const { tasks } = await connectClient(s, TaskService, "connect").listTasks({ parent: "devices/e2e-thermostat" });
    expect(tasks.map((t) => (t.command?.kind.case === "thermostat" ? t.command.kind.value.action : undefined))).toEqual([
      { case: "boost", value: expect.objectContaining({ minutes: 15 }) },
    ]);
    await screenshot(page, "thermostat-controls");
  });

  it("renders a telemetry chart and appends live samples", async () => {
    const now = Date.now();
    const samples = Array.from({ length: 30 }, (_, i) => ({
      metric: "boiler_temperature_celsius",
      value: 88 + Math.sin(i / 3) * 4,
      time: { seconds: BigInt(Math.floor((now - (30 - i) * 20_000) / 1000)), nanos: 0 },
    }));
    await coffee.sendTelemetry(samples);
    const api = connectClient(s, DeviceService, "connect");
    await eventually(
      async () => (await api.getDevice({ name: "devices/e2e-coffee" })).latestTelemetry.some((x) => x.metric === "boiler_temperature_celsius"),
      30_000,
      "telemetry stored",
    );

    await page.goto(`${s.baseUrl}/devices/e2e-coffee`);
    await page.selectOption('select[name="bucket"]', { label: "raw" });
    const chart = page.locator('.chart[data-metric="boiler_temperature_celsius"]');
    await chart.locator("canvas").waitFor();
    await expect.poll(async () => Number(await chart.getAttribute("data-points")), { timeout: 30_000 }).toBeGreaterThanOrEqual(30);
    const before = Number(await chart.getAttribute("data-points"));
    // The live tail: a new sample shows up without re-querying.
    await eventually(
      async () => {
        await coffee.sendTelemetry([{ metric: "boiler_temperature_celsius", value: 93 }]);
        return Number(await chart.getAttribute("data-points")) > before;
      },
      30_000,
      "a live sample on the chart",
    );
    const painted = await chart.locator("canvas").evaluate((c) => c.width > 0 && c.height > 0);
    expect(painted).toBe(true);
    await chart.scrollIntoViewIfNeeded();
    await screenshot(page, "telemetry-chart");
  });

  it("previews a cron rule's next fire times, shows field errors, creates it and lists its runs", async () => {
    await page.goto(`${s.baseUrl}/rules`);
    await page.fill('input[name="cron"]', "0 61 * * * *");
    await page.locator(".cron-editor .field-error").waitFor();
    expect(await page.locator(".cron-editor .field-error").textContent()).toMatch(/invalid cron expression/);
    await screenshot(page, "rule-cron-error");

    await page.fill('input[name="cron"]', "*/2 * * * * *");
    await page.fill('input[name="time-zone"]', "UTC");
    await expect.poll(() => page.locator('[data-testid="cron-preview"] li').count(), { timeout: 30_000 }).toBe(5);
    await page.fill('input[name="rule-id"]', "e2e-blink");
    await page.fill('input[name="device"]', "e2e-led");
    await page.selectOption('select[name="action"]', "brightness");
    await page.fill('input[name="command-brightness"]', "30");
    await page.click('button:has-text("Create rule")');
    await page.waitForURL(/\/rules\/e2e-blink$/);
    await page.locator('tr[data-run-state="FIRED"]').first().waitFor({ timeout: 60_000 });
    await screenshot(page, "rule-runs");
    // Stop it so it does not keep creating tasks for the rest of the suite.
    await page.click('button:has-text("Pause")');
    await page.locator('h2 .badge:has-text("paused")').waitFor();
  });

  it("builds a rule's selector and command for the chosen product (thermostats)", async () => {
    await page.goto(`${s.baseUrl}/rules`);
    await page.fill('input[name="rule-id"]', "e2e-hall-warm");
    await page.locator('.rule-form label:has-text("once") input[type="radio"]').check();
    await page.fill('input[name="once"]', "2099-01-01T07:00:00");
    await page.selectOption('.rule-form select[name="kind"]', { label: "thermostat" });
    await page.locator('.rule-form label:has-text("every device with labels") input').check();
    await page.fill('input[name="selector-labels"]', "room=hall");
    // The thermostat's own actions, not the previous product's.
    expect(await page.locator('select[name="action"] option').allTextContents()).toEqual(["setpoint", "mode", "boost"]);
    await page.fill('input[name="command-setpoint"]', "19.5");
    await page.selectOption('.rule-form select[name="task-priority"]', "8");
    await page.click('button:has-text("Create rule")');
    await page.waitForURL(/\/rules\/e2e-hall-warm$/);
    await page.locator('p:has-text("task priority 8")').waitFor();
    const rule = await connectClient(s, RuleService, "connect").getRule({ name: "rules/e2e-hall-warm" });
    expect(rule.taskPriority).toBe(8);
    expect(rule.target.case === "selector" && rule.target.value.kind).toBe(ProductKind.THERMOSTAT);
    expect(rule.command?.kind.case === "thermostat" && rule.command.kind.value.action).toEqual({ case: "setSetpointCelsius", value: 19.5 });
    await page.locator('tr[data-rule="e2e-hall-warm"]:has-text("thermostats with room=hall")').waitFor();
    expect(await page.locator('tr[data-rule="e2e-hall-warm"]').textContent()).toContain("setpoint 19.5");
  });

  it("shows the server's field reasons on a bad rule", async () => {
    await page.goto(`${s.baseUrl}/rules`);
    await page.fill('input[name="rule-id"]', "Bad Id");
    await page.fill('input[name="device"]', "e2e-led");
    await page.click('button:has-text("Create rule")');
    const err = page.locator('.rule-form .field-error:near(input[name="rule-id"])').first();
    await err.waitFor();
    expect(await err.textContent()).toMatch(/lowercase letters, digits or hyphens/);
    await screenshot(page, "rule-field-error");
  });

  it("without a client certificate, refuses a wrong password on the sign-in page", async () => {
    const anon = await newContext(browser, s.baseUrl);
    try {
      const p = await anon.newPage();
      await p.goto(`${s.baseUrl}/devices/e2e-coffee`);
      await p.locator('input[name="username"]').waitFor({ timeout: 30_000 });
      await p.fill('input[name="username"]', "admin");
      await p.fill('input[name="password"]', "not-the-password");
      await p.click('button:has-text("Sign in")');
      await p.locator(".login .error").waitFor();
      expect(await p.locator(".login .error").textContent()).toBe("Wrong user name or password.");
      await screenshot(p, "login");
    } finally {
      await anon.close();
    }
  });

  it("signs in with a password (no certificate), sees only the user's devices, survives a reload and signs out", async () => {
    // A user made through UserService, who creates one device of their own.
    const token = await userToken(s, "dana", "dana-password-1");
    await bearerClient(s, DeviceService, token).createDevice({ deviceId: "e2e-dana-led", device: { kind: { case: "led", value: {} } } });
    const anon = await newContext(browser, s.baseUrl);
    try {
      const p = await anon.newPage();
      p.setDefaultTimeout(30_000);
      await p.goto(`${s.baseUrl}/`);
      await p.fill('input[name="username"]', "dana");
      await p.fill('input[name="password"]', "dana-password-1");
      await p.click('button:has-text("Sign in")');
      await p.locator('tr[data-device="e2e-dana-led"]').waitFor();
      await p.locator('.who:has-text("dana")').waitFor();
      // Only what dana owns: the admin's devices are not listed.
      expect(await p.locator("tr[data-device]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-device")))).toEqual(["e2e-dana-led"]);
      // The refresh token is an HttpOnly cookie that page scripts cannot read; nothing is stored.
      const cookies = await anon.cookies();
      expect(cookies.find((c) => c.name === "tether_refresh")).toMatchObject({
        httpOnly: true,
        secure: true,
        sameSite: "Strict",
        path: "/tether.v1.AuthService/",
      });
      expect(await p.evaluate("[document.cookie, localStorage.length, sessionStorage.length]")).toEqual(["", 0, 0]);
      await screenshot(p, "password-fleet");

      // A reload keeps the session (Refresh from the cookie); the access token was only in memory.
      await p.reload();
      await p.locator('tr[data-device="e2e-dana-led"]').waitFor();
      await p.locator('.who:has-text("dana")').waitFor();

      await p.click('.who button:has-text("Sign out")');
      await p.locator('input[name="username"]').waitFor();
      expect(await p.locator(".login .note").first().textContent()).toMatch(/signed out/);
      expect((await anon.cookies()).find((c) => c.name === "tether_refresh")).toBeUndefined();
      // And a reload stays signed out.
      await p.reload();
      await p.locator('input[name="username"]').waitFor();
      await screenshot(p, "password-signed-out");
    } finally {
      await anon.close();
    }
  });

  it("creates an API key with the current password and an expiry, shows the secret once, lists and revokes it", async () => {
    await userToken(s, "erin", "erin-password-1");
    const anon = await newContext(browser, s.baseUrl);
    try {
      const p = await anon.newPage();
      p.setDefaultTimeout(30_000);
      await p.goto(`${s.baseUrl}/api-keys`);
      await p.fill('input[name="username"]', "erin");
      await p.fill('input[name="password"]', "erin-password-1");
      await p.click('button:has-text("Sign in")');
      await p.locator('.api-keys input[name="current_password"]').waitFor();
      // A wrong password: refused, nothing created.
      await p.fill('.api-keys input[name="display_name"]', "nightly export");
      await p.fill('.api-keys input[name="current_password"]', "not-erins-password");
      await p.click('button:has-text("Create key")');
      await p.locator(".api-keys .error").waitFor();
      expect(await p.locator(".api-keys .error").textContent()).toMatch(/current_password is wrong/);
      expect(await p.locator("tr[data-key]").count()).toBe(0);

      await p.selectOption('.api-keys select[name="expires"]', "30");
      await p.fill('.api-keys input[name="current_password"]', "erin-password-1");
      await p.click('button:has-text("Create key")');
      const secret = (await p.locator(".api-keys .secret-value").textContent()) ?? "";
      expect(secret).toMatch(/^tether_/);
      expect(await p.inputValue('.api-keys input[name="current_password"]')).toBe(""); // not kept
      const row = p.locator("tr[data-key]");
      await row.waitFor();
      expect(await row.locator(".expires").textContent()).not.toBe("never");
      expect(await row.locator(".last-used").textContent()).toBe("never");
      await screenshot(p, "api-keys");

      // The key works as erin until revoked from the page.
      await bearerClient(s, DeviceService, secret).listDevices({});
      await row.locator('button:has-text("Revoke")').click();
      await eventually(async () => (await p.locator("tr[data-key]").count()) === 0, 30_000, "the revoked key to leave the list");
      await expect(bearerClient(s, DeviceService, secret).listDevices({})).rejects.toMatchObject({ code: 16 });
    } finally {
      await anon.close();
    }
  });
});
