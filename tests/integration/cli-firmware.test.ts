import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { firmwareCommand } from "../../src/cli/firmware.js";
import { ensureDevPki } from "../../src/pki/dev-pki.js";
import { image, sha256 } from "../helpers/firmware.js";
import { startTestStack, type TestStack } from "../helpers/stack.js";

const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
let s: TestStack;
let dir: string;
let flags: string[];
const bytes = image(2 * 1024 * 1024 + 123, 9);
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-cli-firmware-"));
  await ensureDevPki(path.join(dir, "certs"));
  s = await startTestStack({ TETHER_CERTS_DIR: path.join(dir, "certs") });
  flags = ["--address", s.baseUrl, "--certs", path.join(dir, "certs")];
  await writeFile(path.join(dir, "led.bin"), bytes);
}, 60_000);
afterAll(async () => {
  await s?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]): Promise<string> {
  const out: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  try {
    await firmwareCommand([...args, ...flags]);
  } finally {
    spy.mockRestore();
  }
  return out.join("\n");
}

/** The real binary with no server reachable: verify must not need one. */
function bin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TETHER_ADDRESS: "https://127.0.0.1:9" };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env, cwd: dir }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("tether firmware", () => {
  it("uploads a file in chunks, lists and gets it, and exports the manifest and keys", async () => {
    const up = await run(
      "upload",
      path.join(dir, "led.bin"),
      "--kind",
      "led",
      "--version",
      "1.2.0",
      "--notes",
      "faster blink",
      "--hardware",
      "rev-b",
      "--id",
      "led-120",
    );
    expect(up).toContain("firmwares/led-120");
    expect(up).toContain(`sha256        ${sha256(bytes)}`);
    expect(up).toContain("state         PUBLISHED");
    expect(await run("list", "--kind", "led")).toMatch(/led-120\s+led\s+1\.2\.0\s+PUBLISHED\s+2097275/);
    await run("get", "led-120", "--manifest-out", path.join(dir, "led.manifest"));
    const keys = await run("keys", "--out", path.join(dir, "firmware-keys.pem"));
    expect(keys).toContain("wrote 1 public key(s)");
    expect(await readFile(path.join(dir, "firmware-keys.pem"), "utf8")).toContain("BEGIN PUBLIC KEY");
  });

  it("verify passes the good file offline, and fails a flipped byte with the reason and exit 1", async () => {
    const good = await bin("firmware", "verify", "led.bin", "--manifest", "led.manifest");
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("led.bin: OK — firmwares/led-120 (led 1.2.0, 2097275 bytes)");
    const flipped = Buffer.from(bytes);
    flipped[1_500_000] = flipped[1_500_000]! ^ 0x01;
    await writeFile(path.join(dir, "bad.bin"), flipped);
    const bad = await bin("firmware", "verify", "bad.bin", "--manifest", "led.manifest", "--key", "firmware-keys.pem");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("bad.bin does NOT verify: the file's SHA-256 is");
    expect(bad.stderr).toContain("the file is not the signed image");
  });

  it("verify refuses a manifest whose signature does not hold (another key, or altered)", async () => {
    const m = JSON.parse(await readFile(path.join(dir, "led.manifest"), "utf8")) as { manifest: string };
    const altered = Buffer.from(m.manifest, "base64");
    altered[altered.length - 1] = altered[altered.length - 1]! ^ 0x01;
    await writeFile(path.join(dir, "altered.manifest"), JSON.stringify({ ...m, manifest: altered.toString("base64") }));
    const r = await bin("firmware", "verify", "led.bin", "--manifest", "altered.manifest");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("the manifest's signature does not verify");
    const usage = await bin("firmware", "verify", "led.bin");
    expect(usage.code).toBe(2);
  });
});
