import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BIN = path.resolve(import.meta.dirname, "../../bin/tether.js");
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the real binary (no server: every case here ends before a connection). */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // An empty folder and a closed port: a command that did try to connect would fail differently.
  const env = { ...process.env, TETHER_CERTS_DIR: path.join(dir, "certs"), TETHER_ADDRESS: "https://127.0.0.1:9" };
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir, env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe("tether's command line: help, unknown commands and flags", () => {
  it("answers mistakes with one error line, a suggestion and where the help is, exit 2", async () => {
    const [lst, device, colour, none, missing, stray] = await Promise.all([
      cli("devices", "lst"),
      cli("device", "list"),
      cli("devices", "list", "--colour", "red"),
      cli("devices"),
      cli("devices", "create", "x", "--kind"),
      cli("simulate", "extra"),
    ]);
    expect(lst).toEqual({
      code: 2,
      stdout: "",
      stderr: 'error: unknown command "lst" for "tether devices"; did you mean "list"?\nrun tether devices --help\n',
    });
    expect(device).toEqual({ code: 2, stdout: "", stderr: 'error: unknown command "device" for "tether"; did you mean "devices"?\nrun tether --help\n' });
    expect(colour).toEqual({ code: 2, stdout: "", stderr: "error: unknown option --colour; did you mean --color?\nrun tether devices --help\n" });
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(
      'error: missing command for "tether devices": one of create, get, list, count, update, delete, connectivity\nrun tether devices --help\n',
    );
    expect(missing).toEqual({ code: 2, stdout: "", stderr: "error: option --kind needs a value\nrun tether devices --help\n" });
    expect(stray).toEqual({ code: 2, stdout: "", stderr: 'error: unexpected argument "extra" for "tether simulate"\nrun tether simulate --help\n' });
  }, 120_000);

  it("--help and -h print the command's usage and exit 0, for every command and subcommand", async () => {
    const cases: Array<[string[], string]> = [
      [["--help"], "tether — gRPC-first IoT control plane"],
      [["help", "rules"], "tether rules <command>"],
      [["simulate", "--help"], "tether simulate --kind"],
      [["devices", "create", "--help"], "tether devices <command>"],
      [["tasks", "create", "kitchen-led", "-h"], "tether tasks <command>"],
      [["users", "api-keys", "create", "--help"], "tether users <command>"],
      [["webhooks", "rotate-secret", "--help"], "tether webhooks <command>"],
      [["whoami", "--help"], "tether login"],
      [["serve", "-h"], "tether serve"],
      [["migrate", "--help"], "tether migrate"],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(...args)));
    for (const [i, r] of results.entries()) {
      expect({ args: cases[i]![0], code: r.code, stderr: r.stderr }).toEqual({ args: cases[i]![0], code: 0, stderr: "" });
      expect(r.stdout.startsWith(cases[i]![1])).toBe(true);
    }
  }, 180_000);
});
