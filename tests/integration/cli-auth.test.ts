import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { devicesCommand } from "../../src/cli/devices.js";
import { loginCommand } from "../../src/cli/login.js";
import { auditCommand } from "../../src/cli/audit.js";
import { shareCommand } from "../../src/cli/share.js";
import { usersCommand } from "../../src/cli/users.js";
import { connectClient, startTestStack, type TestStack } from "../helpers/stack.js";

let s: TestStack;
let configDir: string;
let flags: string[];
const saved = process.env.TETHER_CONFIG_DIR;
beforeAll(async () => {
  s = await startTestStack();
  configDir = await mkdtemp(path.join(tmpdir(), "tether-cli-config-"));
  process.env.TETHER_CONFIG_DIR = configDir;
  flags = ["--address", s.baseUrl, "--certs", path.join(s.dir, "certs")];
});
afterAll(async () => {
  if (saved === undefined) delete process.env.TETHER_CONFIG_DIR;
  else process.env.TETHER_CONFIG_DIR = saved;
  await rm(configDir, { recursive: true, force: true });
  await s?.cleanup();
});

/** Runs a CLI command, returning what it printed. */
async function run(fn: () => Promise<void>): Promise<string> {
  const out: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return out.join("\n");
}

const io = (password: string) => ({ readPassword: async () => password });
const file = () => path.join(configDir, "credentials.json");

describe("tether login, users and share", () => {
  it("logs in, stores tokens 0600, and uses them instead of the admin certificate", async () => {
    // As the admin certificate: a user with a password, a device of someone else, a group.
    expect(await run(() => usersCommand(["create", "carol", "--password", ...flags], io("carol-password-1")))).toMatch(/created users\/carol/);
    await run(() => usersCommand(["create", "dave", ...flags], io("")));
    expect(await run(() => usersCommand(["add-to-group", "dave", "ops", "--create-group", ...flags], io("")))).toBe("groups/ops: users/dave");
    expect(await run(() => usersCommand(["list", ...flags], io("")))).toMatch(/users\/carol\s+set/);
    await connectClient(s, DeviceService, "grpc").createDevice({ deviceId: "admins-led", device: { kind: { case: "led", value: {} } } });

    expect(await run(() => loginCommand("login", ["--user", "carol", ...flags], io("carol-password-1")))).toMatch(/signed in as carol/);
    expect((await stat(file())).mode & 0o777).toBe(0o600);
    expect((await stat(configDir)).mode & 0o077).toBe(0);
    const stored = JSON.parse(await readFile(file(), "utf8")) as Record<string, { user: string; refreshToken: string }>;
    expect(stored[s.baseUrl]?.user).toBe("carol");
    expect(await run(() => loginCommand("whoami", flags))).toMatch(/^carol at/);

    // Now the CLI is carol: her device is hers, and she sees only it.
    await run(() => devicesCommand(["create", "carol-led", "--kind", "led", ...flags]));
    expect((await connectClient(s, DeviceService, "grpc").getDevice({ name: "devices/carol-led" })).owner).toBe("carol");
    const listed = await run(() => devicesCommand(["list", ...flags]));
    expect(listed).toMatch(/devices\/carol-led/);
    expect(listed).not.toMatch(/admins-led/);
    // Carol is not an admin.
    await expect(usersCommand(["list", ...flags], io(""))).rejects.toMatchObject({ rawMessage: expect.stringMatching(/needs an admin/) });
  });

  it("shares, lists and unshares a device", async () => {
    expect(await run(() => shareCommand(["add", "carol-led", "--user", "dave", "--role", "operator", ...flags]))).toMatch(
      /users\/dave is operator of devices\/carol-led/,
    );
    await run(() => shareCommand(["add", "carol-led", "--group", "ops", "--role", "viewer", ...flags]));
    const list = await run(() => shareCommand(["list", "carol-led", ...flags]));
    expect(list).toMatch(/users\/dave\s+devices\/carol-led\s+operator\s+users\/carol/);
    expect(list).toMatch(/groups\/ops\s+devices\/carol-led\s+viewer/);
    expect(await run(() => shareCommand(["remove", "carol-led", "--user", "dave", ...flags]))).toMatch(/^removed grants\//);
    expect(await run(() => shareCommand(["list", ...flags]))).not.toMatch(/users\/dave/);
    await expect(shareCommand(["add", "--selector", 'labels.room = "x"', "--user", "dave", "--role", "viewer", ...flags])).rejects.toMatchObject({
      rawMessage: expect.stringMatching(/needs an admin/),
    });
  });

  it("tether audit list shows the signed-in user's shares and the refused one, newest first", async () => {
    const out = await run(() => auditCommand(["list", "--principal", "users/carol", "--since", "1h", ...flags]));
    const lines = out.split("\n");
    expect(lines[0]).toMatch(/^TIME\s+PRINCIPAL\s+METHOD\s+RESOURCE\s+OUTCOME\s+FIELDS/);
    expect(lines[1]).toMatch(/users\/carol\s+ShareService\/CreateGrant\s+\S+\s+PERMISSION_DENIED/);
    expect(out).toMatch(/ShareService\/DeleteGrant\s+grants\/\S+\s+OK/);
    expect(out).toMatch(/ShareService\/CreateGrant\s+grants\/\S+\s+OK\s+principal,device,role/);
    const only = await run(() => auditCommand(["list", "--principal", "users/carol", "--method", "DeleteGrant", "--limit", "1", "--json", ...flags]));
    expect(JSON.parse(only).auditEvents).toHaveLength(1);
  });

  it("creates an API key with the signed-in user's password and an expiry, lists it, refuses a wrong password", async () => {
    const prompts: string[] = [];
    const asking = (password: string) => ({ readPassword: async (prompt: string) => (prompts.push(prompt), password) });
    const out = await run(() =>
      usersCommand(["api-keys", "create", "me", "--display-name", "nightly", "--expires-in", "2d", ...flags], asking("carol-password-1")),
    );
    expect(prompts).toEqual(["current password of carol: "]);
    expect(out).toMatch(/^users\/carol\/apiKeys\/[0-9a-f]+; expires \d{4}-\d\d-\d\dT[\d:]+Z\nsecret/);
    const expires = /expires (\S+)/.exec(out)![1]!;
    expect(Math.abs(Date.parse(expires) - (Date.now() + 2 * 86_400_000))).toBeLessThan(120_000);
    const listed = await run(() => usersCommand(["api-keys", "list", "me", ...flags], io("")));
    expect(listed).toMatch(/NAME\s+DISPLAY NAME\s+CREATED\s+EXPIRES\s+LAST USED/);
    expect(listed).toContain(expires);
    await expect(usersCommand(["api-keys", "create", "me", ...flags], io("not-carols-password"))).rejects.toMatchObject({
      rawMessage: expect.stringMatching(/current_password is wrong/),
    });
    await expect(usersCommand(["api-keys", "create", "me", "--expires-in", "soon", ...flags], io("carol-password-1"))).rejects.toThrow(
      /--expires-in soon: expected a number and a unit/,
    );
    expect((await run(() => usersCommand(["api-keys", "list", "me", ...flags], io("")))).split("\n")).toHaveLength(2); // nothing more was created
  });

  it("refreshes an expiring access token by itself, then logs out back to the certificate", async () => {
    const before = JSON.parse(await readFile(file(), "utf8")) as Record<string, { accessExpireTime: string; refreshToken: string }>;
    before[s.baseUrl]!.accessExpireTime = new Date(Date.now() - 1000).toISOString();
    await writeFile(file(), JSON.stringify(before), { mode: 0o600 });
    expect(await run(() => devicesCommand(["list", ...flags]))).toMatch(/carol-led/);
    const after = JSON.parse(await readFile(file(), "utf8")) as Record<string, { accessExpireTime: string; refreshToken: string }>;
    expect(after[s.baseUrl]!.refreshToken).not.toBe(before[s.baseUrl]!.refreshToken);
    expect(Date.parse(after[s.baseUrl]!.accessExpireTime)).toBeGreaterThan(Date.now());
    expect((await stat(file())).mode & 0o777).toBe(0o600);

    expect(await run(() => loginCommand("logout", flags))).toMatch(/signed out carol/);
    expect(await run(() => devicesCommand(["list", ...flags]))).toMatch(/admins-led/); // the admin certificate again
  });
});
