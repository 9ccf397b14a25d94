import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { webhooksCommand } from "../../src/cli/webhooks.js";
import { type DevPki, ensureDevPki } from "../../src/pki/dev-pki.js";
import { eventually } from "../helpers/devices.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";
import { type Receiver, startReceiver } from "../helpers/webhook-receiver.js";

const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
let s: TestStack;
let pki: DevPki;
let pkiDir: string;
let flags: string[];
let r: Receiver;
beforeAll(async () => {
  pkiDir = await mkdtemp(path.join(tmpdir(), "tether-cli-webhooks-"));
  pki = await ensureDevPki(pkiDir);
  // One attempt: a failing delivery is DEAD at once, so `replay` has something to replay.
  s = await startTestStack({
    TETHER_CERTS_DIR: pkiDir,
    TETHER_WEBHOOK_CA_FILE: path.join(pkiDir, "ca.crt"),
    TETHER_WEBHOOK_ALLOW_HTTP: "1",
    TETHER_WEBHOOK_MAX_ATTEMPTS: "1",
    TETHER_WEBHOOK_POLL_MS: "20",
  });
  r = await startReceiver({ cert: pki.server.certPem, key: pki.server.keyPem });
  flags = ["--address", s.baseUrl, "--certs", pkiDir];
}, 60_000);
afterAll(async () => {
  await r?.close();
  await s?.cleanup();
  await rm(pkiDir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<string> {
  const out: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  try {
    await webhooksCommand([...args, ...flags]);
  } finally {
    spy.mockRestore();
  }
  return out.join("\n");
}

/** The real binary, for exit codes (no server: these end before a connection). */
function bin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TETHER_CERTS_DIR: pkiDir, TETHER_ADDRESS: "https://127.0.0.1:9" };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("tether webhooks", () => {
  it("creates (the secret shown once), lists, gets, updates, lists deliveries, replays, rotates and deletes", async () => {
    const created = await run("create", "ops", "--url", r.url, "--events", "device.created,device.updated", "--device-filter", 'labels.team = "cli"');
    const secret = /signing secret \(shown once[^\n]*\n(whsec_\S+)/.exec(created)?.[1];
    expect(secret).toBeDefined();
    r.secrets.push(secret!);
    expect(created).toMatch(/device_filter\s+labels\.team = "cli"/);
    expect(await run("get", "ops")).not.toContain("whsec_");
    expect(await run("list")).toMatch(/^ops\s+https:\/\/localhost:\d+\/hook\s+device\.created,device\.updated\s+labels\.team = "cli"\s+enabled$/m);

    // A delivery the receiver refuses: DEAD after its one attempt, then replayed once it answers 200.
    r.mode = 500;
    await connectClient(s, DeviceService, "connect").createDevice({ deviceId: "cli-1", device: { labels: { team: "cli" }, kind: { case: "led", value: {} } } });
    const dead = await eventually(
      async () => {
        const out = await run("deliveries", "ops", "--state", "dead");
        return out.includes("DEAD") && out;
      },
      8000,
      "a DEAD delivery",
    );
    expect(dead).toMatch(/device\.created\s+devices\/cli-1\s+DEAD\s+1\s+500\s+HTTP 500/);
    const deliveryId = /^([0-9a-f-]{36})\s/m.exec(dead)![1]!;
    expect(await run("deliveries", "ops", "--state", "delivered")).not.toContain(deliveryId);
    r.mode = 200;
    expect(await run("replay", "ops", deliveryId)).toMatch(/deliveries\/[0-9a-f-]{36}: PENDING \(sent again with event id /);
    await eventually(async () => (await run("deliveries", "ops", "--state", "delivered")).includes(deliveryId), 8000, "the replayed delivery DELIVERED");
    expect(r.received.at(-1)!.verified).toBe(true);

    // Update changes only what is given.
    const updated = await run("update", "ops", "--display-name", "Ops room", "--format", "binary");
    expect(updated).toMatch(/display_name\s+Ops room/);
    expect(updated).toMatch(/payload_format\s+binary/);
    expect(updated).toMatch(/event_types\s+device\.created, device\.updated/);
    expect(await run("update", "ops", "--disable")).toMatch(/disabled\s+yes/);
    expect(await run("list")).toMatch(/^ops\s.*disabled$/m);

    // Rotation: a new secret, shown once; the old one keeps signing for --keep-previous.
    const rotated = await run("rotate-secret", "ops", "--keep-previous", "2h");
    const next = /signing secret \(shown once[^\n]*\n(whsec_\S+)/.exec(rotated)?.[1];
    expect(next).toBeDefined();
    expect(next).not.toBe(secret);
    expect(rotated).toMatch(/previous_secret_expire_time\s+\d{4}-/);

    expect(await run("delete", "ops")).toBe("deleted webhooks/ops");
    expect(await run("delete", "ops", "--allow-missing")).toBe("webhooks/ops not found, nothing to delete");
    await expect(run("get", "ops")).rejects.toMatchObject({ rawMessage: expect.stringMatching(/webhooks\/ops/) });
  });

  it("--json prints protobuf JSON", async () => {
    const out = await run("create", "json-hook", "--url", r.url, "--events", "task.state_changed", "--json");
    expect(JSON.parse(out)).toMatchObject({ name: "webhooks/json-hook", eventTypes: ["task.state_changed"], secret: expect.stringMatching(/^whsec_/) });
  });

  it("a bad flag or a missing argument exits 2 before connecting; a server refusal exits 1 naming the field", async () => {
    const [format, state, keep, noUrl, noEvents, nothing, both, replay, refused] = await Promise.all([
      bin("webhooks", "create", "x", "--url", "https://h/", "--events", "device.created", "--format", "xml"),
      bin("webhooks", "deliveries", "x", "--state", "lost"),
      bin("webhooks", "rotate-secret", "x", "--keep-previous", "soon"),
      bin("webhooks", "create", "x", "--events", "device.created"),
      bin("webhooks", "create", "x", "--url", "https://h/"),
      bin("webhooks", "update", "x"),
      bin("webhooks", "update", "x", "--disable", "--enable"),
      bin("webhooks", "replay", "x"),
      bin("webhooks", "create", "x", "--url", "not a url", "--events", "device.created", "--address", s.baseUrl),
    ]);
    expect(format).toEqual({ code: 2, stdout: "", stderr: "error: --format xml: expected json or binary\nrun tether webhooks --help\n" });
    expect(state).toEqual({ code: 2, stdout: "", stderr: "error: --state lost: expected pending, delivered, failed or dead\nrun tether webhooks --help\n" });
    expect(keep.code).toBe(2);
    expect(noUrl).toMatchObject({ code: 2, stderr: expect.stringContaining("needs --url") });
    expect(noEvents).toMatchObject({ code: 2, stderr: expect.stringContaining("needs --events") });
    expect(nothing).toMatchObject({ code: 2, stderr: expect.stringContaining("nothing to update") });
    expect(both).toMatchObject({ code: 2, stderr: expect.stringContaining("not both") });
    expect(replay).toMatchObject({ code: 2, stderr: expect.stringContaining("missing delivery") });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("webhook.url");
  }, 120_000);
});
