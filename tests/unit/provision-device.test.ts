import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * deploy/rabbitmq/provision-device.sh against a stand-in `rabbitmqctl` that records its calls and
 * lists the users it is given: the script must never create or rewrite the rights of an account
 * that is not a device (tests/services/rabbitmq.test.ts runs it against a real node).
 */
const run = promisify(execFile);
const SCRIPT = path.resolve(import.meta.dirname, "../../deploy/rabbitmq/provision-device.sh");
let dir: string;
let ctl: string;
let calls: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-provision-"));
  ctl = path.join(dir, "rabbitmqctl");
  calls = path.join(dir, "calls");
  // Records each call; lists $STUB_USERS; keeps the last imported definitions file.
  await writeFile(
    ctl,
    `#!/bin/sh\necho "$*" >> "${calls}"\ncase "$*" in *list_users*) printf '%s' "$STUB_USERS" ;; *import_definitions*) for a; do f="$a"; done; cp "$f" "${calls}.json" ;; esac\n`,
  );
  await chmod(ctl, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function provision(id: string, users = ""): Promise<{ code: number; stderr: string; calls: string[] }> {
  await writeFile(calls, "");
  let code = 0;
  let stderr = "";
  try {
    await run("sh", [SCRIPT, id, "-n", "rabbit@test"], { env: { PATH: process.env.PATH, RABBITMQCTL: ctl, STUB_USERS: users } });
  } catch (err) {
    code = (err as { code: number }).code;
    stderr = (err as { stderr: string }).stderr;
  }
  return { code, stderr, calls: (await readFile(calls, "utf8")).split("\n").filter(Boolean) };
}

describe("deploy/rabbitmq/provision-device.sh", () => {
  it.each(["tether", "admin", "guest", "mosquitto", "rabbitmq"])("refuses the reserved name %s and calls nothing", async (id) => {
    const r = await provision(id);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/reserved name/);
    expect(r.calls).toEqual([]);
  });

  it.each(["$SYS", "$share", "Tether", "led.1", "led#", "-x", ""])("refuses the malformed id %j", async (id) => {
    const r = await provision(id);
    expect(r.code).not.toBe(0);
    expect(r.calls).toEqual([]);
  });

  it("refuses an existing user that is not a device, e.g. Tether's own under another name", async () => {
    const r = await provision("tether-prod", "tether-prod\t[]\nled-1\t[tether-device]\n");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already exists and is not a device user/);
    expect(r.calls.filter((c) => !c.includes("list_users"))).toEqual([]);
  });

  it("creates a new device user with its tag and only its own permissions, in one import", async () => {
    const r = await provision("led-2", "led-1\t[tether-device]\n");
    expect(r.code).toBe(0);
    expect(r.calls.map((c) => c.split(" ").slice(2, 4).join(" "))).toEqual(["-q list_users", "-q import_definitions"]);
    const defs = JSON.parse(await readFile(`${calls}.json`, "utf8")) as Record<string, Array<Record<string, unknown>>>;
    expect(defs.users).toEqual([
      { name: "led-2", password_hash: "", hashing_algorithm: "rabbit_password_hashing_sha256", tags: ["tether-device"], limits: {} },
    ]);
    expect(defs.permissions).toEqual([
      {
        user: "led-2",
        vhost: "/",
        configure: "^mqtt-subscription-led-2qos[01]$",
        write: "^(amq\\.topic|mqtt-subscription-led-2qos[01])$",
        read: "^(amq\\.topic|mqtt-subscription-led-2qos[01])$",
      },
    ]);
    expect(defs.topic_permissions).toEqual([
      {
        user: "led-2",
        vhost: "/",
        exchange: "amq.topic",
        write: "^tether\\.v1\\.devices\\.{username}\\.(up|up\\.json|presence|metrics\\..+)$",
        read: "^tether\\.v1\\.devices\\.{username}\\.down$",
      },
    ]);
  });

  it("re-provisions an existing device user", async () => {
    const r = await provision("led-1", "led-1\t[tether-device]\n");
    expect(r.code).toBe(0);
    expect(r.calls.some((c) => c.includes("import_definitions"))).toBe(true);
  });
});
