import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/tether/v1/audit_service_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { Grant_Role, ShareService } from "../../gen/tether/v1/share_service_pb.js";
import { UserService } from "../../gen/tether/v1/user_service_pb.js";
import { bearerClient, userToken } from "../helpers/auth.js";
import { caFetch } from "../helpers/ca-fetch.js";
import { LedSim } from "../../src/core/products/led-sim.js";
import { startSimulator } from "../../src/sim/simulator.js";
import { deviceCredentials, eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
/** Low enough that a loop of cheap calls reaches it; the scenarios stay well under it. */
const HTTP_RATE = 60;
let s: TestStack;
let led: Awaited<ReturnType<typeof startSimulator>>;
let configDir: string;
const tokens: Record<string, string> = {};
let ottoKey: { name: string; secret: string };
const clients: Client[] = [];

beforeAll(async () => {
  s = await startTestStack({ TETHER_MCP_RATE_PER_MIN: String(HTTP_RATE) });
  configDir = await mkdtemp(path.join(tmpdir(), "tether-mcp-"));
  await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "mcp-led", device: { kind: { case: "led", value: {} } } });
  await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "mcp-spare", device: { kind: { case: "led", value: {} } } });
  for (const u of ["otto", "vera", "rita"]) tokens[u] = await userToken(s, u);
  const share = (user: string, device: string, role: Grant_Role) =>
    connectClient(s, ShareService, "grpc").createGrant({ grant: { principal: `users/${user}`, target: { case: "device", value: `devices/${device}` }, role } });
  await share("otto", "mcp-led", Grant_Role.OPERATOR);
  await share("otto", "mcp-spare", Grant_Role.OWNER);
  await share("vera", "mcp-led", Grant_Role.VIEWER);
  const key = await bearerClient(s, UserService, tokens.otto!).createApiKey({
    parent: "users/me",
    apiKey: { displayName: "assistant" },
    currentPassword: "pw-otto-123456",
  });
  ottoKey = { name: key.name, secret: key.secret };
  led = await startSimulator(new LedSim(), { ...(await deviceCredentials(s, "mcp-led")), telemetry: true, tickMs: 200 });
}, 90_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await led?.device.close();
  await s?.cleanup();
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

/** `tether mcp` as a desktop assistant starts it: the compiled CLI, with an API key in its environment. */
async function stdioClient(env: Record<string, string>): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [BIN, "mcp"],
    env: { PATH: process.env.PATH ?? "", HOME: configDir, TETHER_CONFIG_DIR: configDir, TETHER_ADDRESS: s.baseUrl, TETHER_CERTS_DIR: s.certsDir, ...env },
    stderr: "pipe",
  });
  const client = new Client({ name: "tether-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

/** The SDK's Streamable HTTP client on the API port's `/mcp`, with a bearer credential. */
async function httpClient(bearer: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${s.baseUrl}/mcp`), {
    fetch: caFetch(s.admin.ca),
    requestInit: { headers: { authorization: `Bearer ${bearer}` } },
  });
  const client = new Client({ name: "tether-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return client;
}

async function tool(c: Client, name: string, args: Record<string, unknown> = {}): Promise<{ isError: boolean; text: string }> {
  const res = (await c.callTool({ name, arguments: args })) as CallToolResult;
  const first = res.content[0];
  return { isError: res.isError === true, text: first?.type === "text" ? first.text : "" };
}

async function ok<T = Record<string, unknown>>(c: Client, name: string, args: Record<string, unknown> = {}): Promise<T> {
  const r = await tool(c, name, args);
  if (r.isError) throw new Error(`${name} failed: ${r.text}`);
  return JSON.parse(r.text) as T;
}

const TOOL_NAMES = [
  "list_devices",
  "count_devices",
  "get_device",
  "describe_product",
  "delete_device",
  "create_task",
  "get_task",
  "list_tasks",
  "cancel_task",
  "query_telemetry",
  "latest_telemetry",
  "list_rules",
  "create_rule",
  "pause_rule",
  "resume_rule",
  "preview_cron",
  "create_job",
  "get_job",
  "cancel_job",
  "list_alarms",
  "acknowledge_alarm",
  "list_audit_events",
];

const transports = {
  stdio: () => stdioClient({ TETHER_API_KEY: ottoKey.secret }),
  http: () => httpClient(tokens.otto!),
};
/** Who the audit log names for otto's calls on each transport. */
const principals = { stdio: () => ottoKey.name, http: () => "users/otto" };

describe.each(["stdio", "http"] as const)("MCP over %s", (kind) => {
  let c: Client;
  beforeAll(async () => {
    c = await transports[kind]();
  }, 60_000);

  it("initializes and lists the tools, create_task's schema walked from the Command oneof", async () => {
    expect(c.getServerVersion()?.name).toBe("tether");
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    const create = tools.find((t) => t.name === "create_task")!;
    const command = (create.inputSchema.properties as Record<string, { oneOf: Array<{ properties: Record<string, unknown> }> }>).command!;
    // One arm per product, each the product's command message.
    expect(command.oneOf.map((arm) => Object.keys(arm.properties)[0])).toEqual(["led", "coffee_machine", "thermostat"]);
    // LedCommand is itself one oneof (its actions).
    const actions = (command.oneOf[0]!.properties.led as { oneOf: Array<{ properties: Record<string, unknown> }> }).oneOf;
    expect(actions.map((a) => a.properties)).toContainEqual({ set_power: { type: "boolean" } });
    expect(actions.map((a) => Object.keys(a.properties)[0])).toEqual(["set_power", "set_color", "set_brightness", "set_mode"]);
    expect(tools.find((t) => t.name === "delete_device")!.annotations).toMatchObject({ destructiveHint: true });
    expect(tools.find((t) => t.name === "list_devices")!.annotations).toMatchObject({ readOnlyHint: true });
  });

  it("creates a task on a simulated LED and waits until it SUCCEEDED, audited with via mcp", async () => {
    const task = await ok<{ name: string; state: string; creator: string }>(c, "create_task", {
      parent: "devices/mcp-led",
      command: { led: { set_power: true } },
      wait_seconds: 60,
    });
    expect(task.state).toBe("STATE_SUCCEEDED");
    expect(task.creator).toBe(principals[kind]());
    expect((await ok<{ state: string }>(c, "get_task", { name: task.name })).state).toBe("STATE_SUCCEEDED");
    const { auditEvents } = await connectClient(s, AuditService, "grpc").listAuditEvents({ resource: task.name, via: "mcp" });
    // The read through MCP is on record too (an agent's reads are audited; other clients' are not).
    expect(auditEvents.map((e) => [e.method, e.principal, e.via, e.statusCode])).toEqual([
      ["tether.v1.TaskService/GetTask", principals[kind](), "mcp", 0],
      ["tether.v1.TaskService/CreateTask", principals[kind](), "mcp", 0],
    ]);
    // The same reads by a plain API client (these audit listings) leave nothing.
    const plain = await connectClient(s, AuditService, "grpc").listAuditEvents({ resource: task.name });
    expect(plain.auditEvents.map((e) => e.via)).toEqual(["mcp", "mcp"]);
  });

  it("queries telemetry, raw and in buckets, and the latest values", async () => {
    const raw = await eventually(async () => {
      const r = await ok<{ points?: unknown[] }>(c, "query_telemetry", { parent: "devices/mcp-led", metrics: ["power_w"] });
      return (r.points?.length ?? 0) > 0 && r;
    }, 20_000);
    expect(raw.points!.length).toBeGreaterThan(0);
    const buckets = await ok<{ points?: Array<{ metric: string }> }>(c, "query_telemetry", {
      parent: "devices/mcp-led",
      metrics: ["power_w"],
      bucket_width: "3600s",
    });
    expect(buckets.points!.length).toBeGreaterThanOrEqual(1);
    expect(buckets.points!.length).toBeLessThanOrEqual(2);
    const latest = await ok<{ samples: Array<{ metric: string }> }>(c, "latest_telemetry", { parent: "devices/mcp-led" });
    expect(latest.samples.map((x) => x.metric)).toContain("temperature_celsius");
  });

  it("reads the device and task resources", async () => {
    const { resourceTemplates } = await c.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(["tether://devices/{id}", "tether://tasks/{+name}"]);
    const res = await c.readResource({ uri: "tether://devices/mcp-led" });
    const body = JSON.parse(String((res.contents[0] as { text: string }).text)) as { device: { name: string }; latestTelemetry: { samples: unknown[] } };
    expect(body.device.name).toBe("devices/mcp-led");
    expect(body.latestTelemetry.samples.length).toBeGreaterThan(0);
    const { resources } = await c.listResources();
    expect(resources.map((r) => r.uri)).toContain("tether://devices/mcp-led");
  });

  it("refuses a destructive tool without confirm: true, and the device stays", async () => {
    const r = await tool(c, "delete_device", { name: "devices/mcp-spare" });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/^FAILED_PRECONDITION: delete_device is destructive.*confirm: true/);
    expect((await connectClient(s, DeviceService, "grpc").getDevice({ name: "devices/mcp-spare" })).name).toBe("devices/mcp-spare");
  });

  it("counts a selector job's devices in a dry run, and wants confirm to create it", async () => {
    const job = { command: { led: { set_power: false } }, selector: { filter: 'kind = "led"' } };
    // otto sees his two LEDs.
    expect(await ok(c, "create_job", { job, dry_run: true })).toEqual({ dryRun: true, matchedDevices: 2 });
    expect((await tool(c, "create_job", { job })).text).toMatch(/^FAILED_PRECONDITION: create_job is destructive/);
    expect(
      await ok(c, "create_job", { job: { ...job, selector: undefined, devices: { devices: ["devices/mcp-led", "devices/nope"] } }, dry_run: true }),
    ).toEqual({
      dryRun: true,
      matchedDevices: 1,
    });
    expect(await ok(c, "count_devices", { filter: 'kind = "led"', group_by: "online" })).toMatchObject({ totalCount: "2" });
  });

  it("previews a cron, creates, pauses and resumes a rule, lists rules, alarms and the audit log", async () => {
    const preview = await ok<{ fireTimes: string[] }>(c, "preview_cron", { expression: "0 7 * * 1-5", time_zone: "Europe/Paris", count: 3 });
    expect(preview.fireTimes).toHaveLength(3);
    for (const t of preview.fireTimes) expect([6, 5]).toContain(new Date(t).getUTCHours()); // 07:00 in Paris
    const rule = await ok<{ name: string; paused?: boolean }>(c, "create_rule", {
      rule_id: `${kind}-lights`,
      rule: { cron: { expression: "0 7 * * 1-5", time_zone: "Europe/Paris" }, device: "devices/mcp-spare", command: { led: { set_power: true } } },
    });
    expect(rule.name).toBe(`rules/${kind}-lights`);
    expect((await ok<{ paused?: boolean }>(c, "pause_rule", { name: rule.name })).paused).toBe(true);
    expect((await ok<{ paused?: boolean }>(c, "resume_rule", { name: rule.name })).paused).toBeUndefined();
    expect((await ok<{ rules: Array<{ name: string }> }>(c, "list_rules")).rules.map((r) => r.name)).toContain(rule.name);
    expect(await ok(c, "list_alarms", { filter: { device: "devices/mcp-led" } })).toEqual({});
    const audit = await ok<{ auditEvents: Array<{ method: string; via: string }> }>(c, "list_audit_events", { resource: rule.name, via: "mcp" });
    expect(audit.auditEvents.map((e) => e.method.split("/")[1])).toEqual(["ResumeRule", "PauseRule", "CreateRule"]);
  });

  it("cancels a task an offline device has not taken", async () => {
    const task = await ok<{ name: string; state: string }>(c, "create_task", {
      parent: "devices/mcp-spare",
      command: { led: { set_power: true } },
      wait_seconds: 0,
    });
    expect(task.state).toBe("STATE_QUEUED");
    expect((await ok<{ state: string }>(c, "cancel_task", { name: task.name, reason: "changed my mind" })).state).toBe("STATE_CANCELED");
    const listed = await ok<{ tasks: Array<{ name: string }> }>(c, "list_tasks", { parent: "devices/mcp-spare", filter: "state = CANCELED" });
    expect(listed.tasks.map((t) => t.name)).toContain(task.name);
  });

  it("gives the API's refusals as tool errors with their code and field", async () => {
    const r = await tool(c, "create_task", { parent: "devices/mcp-led", command: { led: { set_brightness: 400 } }, wait_seconds: 0 });
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/^INVALID_ARGUMENT: /);
    expect(r.text).toMatch(/- task\.command\.led\.set_brightness: /);
    expect((await tool(c, "get_device", { name: "devices/not-there" })).text).toMatch(/^(NOT_FOUND|PERMISSION_DENIED): /);
  });
});

describe("tether mcp", () => {
  it("exits by itself when the assistant closes its stdin, after calls opened a connection", async () => {
    const c = await stdioClient({ TETHER_API_KEY: ottoKey.secret });
    await ok(c, "list_devices");
    const started = Date.now();
    await c.close();
    // The SDK's client waits 2 s for the process to exit before it sends SIGTERM.
    expect(Date.now() - started).toBeLessThan(1_900);
  }, 30_000);
});

describe("MCP rights and limits", () => {
  it("refuses a viewer's create_task with PERMISSION_DENIED, over stdio and HTTP", async () => {
    const viaHttp = await httpClient(tokens.vera!);
    const r = await tool(viaHttp, "create_task", { parent: "devices/mcp-led", command: { led: { set_power: true } }, wait_seconds: 0 });
    expect(r).toMatchObject({ isError: true });
    expect(r.text).toMatch(/^PERMISSION_DENIED: /);
    // A viewer still reads.
    expect((await ok<{ name: string }>(viaHttp, "get_device", { name: "devices/mcp-led" })).name).toBe("devices/mcp-led");
    const key = await bearerClient(s, UserService, tokens.vera!).createApiKey({
      parent: "users/me",
      apiKey: { displayName: "a" },
      currentPassword: "pw-vera-123456",
    });
    const viaStdio = await stdioClient({ TETHER_API_KEY: key.secret });
    const r2 = await tool(viaStdio, "create_task", { parent: "devices/mcp-led", command: { led: { set_power: true } }, wait_seconds: 0 });
    expect(r2.isError).toBe(true);
    expect(r2.text).toMatch(/^PERMISSION_DENIED: /);
    // The refusal is audited too, with the principal and via.
    const { auditEvents } = await connectClient(s, AuditService, "grpc").listAuditEvents({ principal: "users/vera/*", method: "CreateTask" });
    expect(auditEvents.map((e) => [e.principal, e.via, e.statusCode])).toEqual([
      [key.name, "mcp", 7],
      ["users/vera", "mcp", 7],
    ]);
  }, 60_000);

  it("answers the README's curl example (a tool call with no session)", async () => {
    const readme = await readFile(path.join(import.meta.dirname, "../../README.md"), "utf8");
    const block = /<!-- mcp:curl -->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, "README block mcp:curl").toBeDefined();
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        "/bin/bash",
        ["-euo", "pipefail", "-c", block!.replaceAll("https://localhost:8443", s.baseUrl)],
        { cwd: s.dir, env: { ...process.env, TETHER_API_KEY: ottoKey.secret } },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    const res = JSON.parse(out) as { result: { content: Array<{ text: string }> } };
    expect(JSON.parse(res.result.content[0]!.text)).toMatchObject({
      fireTimes: [expect.any(String), expect.any(String), expect.any(String)],
      timeZone: "Europe/Paris",
    });
  });

  it("refuses anonymous and bad credentials on /mcp with 401", async () => {
    const post = (headers: Record<string, string>, cert?: { cert: Buffer; key: Buffer }) =>
      caFetch(s.admin.ca, cert)(`${s.baseUrl}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
    const anonymous = await post({});
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await anonymous.text()).toMatch(/access token or API key/);
    expect((await post({ authorization: "Bearer not-a-token" })).status).toBe(401);
    // A client certificate is what a browser sends by itself: not enough for /mcp.
    expect((await post({}, s.admin)).status).toBe(401);
    await expect(httpClient("tether_not-a-key")).rejects.toThrow();
    // Stateless: no SSE stream to open.
    const get = await caFetch(s.admin.ca)(`${s.baseUrl}/mcp`, { headers: { authorization: `Bearer ${tokens.otto}`, accept: "text/event-stream" } });
    expect(get.status).toBe(405);
  });

  it("limits each principal's calls a minute over HTTP, with a retry time", async () => {
    const c = await httpClient(tokens.rita!);
    let refused: { isError: boolean; text: string } | undefined;
    // Tokens come back while the loop runs (one a second at 60/min): three times the budget is ample even when slow.
    for (let i = 0; i < HTTP_RATE * 3 && !refused; i++) {
      const r = await tool(c, "describe_product", { kind: "led" });
      if (r.isError) refused = r;
    }
    expect(refused?.text).toMatch(/^RESOURCE_EXHAUSTED: .*users\/rita; retry after \d+s/);
    // Another principal has its own budget.
    expect((await tool(await httpClient(tokens.vera!), "describe_product", { kind: "led" })).isError).toBe(false);
  }, 60_000);

  it("limits tether mcp's calls too (TETHER_MCP_RATE_PER_MIN)", async () => {
    const c = await stdioClient({ TETHER_API_KEY: ottoKey.secret, TETHER_MCP_RATE_PER_MIN: "1" });
    expect((await tool(c, "describe_product", { kind: "led" })).isError).toBe(false);
    expect((await tool(c, "describe_product", { kind: "led" })).text).toMatch(/^RESOURCE_EXHAUSTED: .*retry after 60s/);
  }, 30_000);
});
