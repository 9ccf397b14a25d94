import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PKI_TREE, PRIVATE_TREE, tightenTree, writePrivateFile, writePublicFile } from "../../src/ops/file-modes.js";
import { privateSocket } from "../../src/store/private-socket.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tether-modes-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (p: string) => (await lstat(p)).mode & 0o7777;

describe("file modes", () => {
  it("narrows a private tree to 0700/0600, never widens, and counts what it changed", async () => {
    const root = path.join(dir, "data");
    await mkdir(path.join(root, "pg", "base"), { recursive: true });
    await writeFile(path.join(root, "pg", "base", "1"), "x");
    await writeFile(path.join(root, "secret"), "x");
    await writeFile(path.join(root, "narrow"), "x");
    for (const p of [root, path.join(root, "pg"), path.join(root, "pg", "base")]) await chmod(p, 0o777);
    await chmod(path.join(root, "pg", "base", "1"), 0o666);
    await chmod(path.join(root, "secret"), 0o644);
    await chmod(path.join(root, "narrow"), 0o400);
    const r = await tightenTree(root, PRIVATE_TREE);
    expect(r).toEqual({ tightened: 5, failed: [] });
    expect(await mode(root)).toBe(0o700);
    expect(await mode(path.join(root, "pg", "base", "1"))).toBe(0o600);
    expect(await mode(path.join(root, "secret"))).toBe(0o600);
    expect(await mode(path.join(root, "narrow"))).toBe(0o400);
    expect((await tightenTree(root, PRIVATE_TREE)).tightened).toBe(0);
  });

  it("never follows a symbolic link out of the tree", async () => {
    const root = path.join(dir, "data");
    await mkdir(root);
    const outside = path.join(dir, "outside.txt");
    await writeFile(outside, "x");
    await chmod(outside, 0o666);
    await symlink(outside, path.join(root, "link"));
    await tightenTree(root, PRIVATE_TREE);
    expect(await mode(outside)).toBe(0o666);
  });

  it("keeps public PKI files readable, private keys 0600, and skips a folder with its own policy", async () => {
    const root = path.join(dir, "data");
    const certs = path.join(root, "certs");
    await mkdir(certs, { recursive: true });
    for (const f of ["ca.crt", "ca.key", "crl.pem"]) {
      await writeFile(path.join(certs, f), "x");
      await chmod(path.join(certs, f), 0o666);
    }
    await chmod(certs, 0o777);
    await tightenTree(root, PRIVATE_TREE, [certs]);
    expect(await mode(path.join(certs, "ca.crt"))).toBe(0o666); // left to the PKI policy
    await tightenTree(certs, PKI_TREE);
    expect(await mode(certs)).toBe(0o755);
    expect(await mode(path.join(certs, "ca.crt"))).toBe(0o644);
    expect(await mode(path.join(certs, "crl.pem"))).toBe(0o644);
    expect(await mode(path.join(certs, "ca.key"))).toBe(0o600);
  });

  it("writes private files 0600 and public ones 0644 even over a wider existing file", async () => {
    const key = path.join(dir, "a.key");
    const crt = path.join(dir, "a.crt");
    await writeFile(key, "old", { mode: 0o666 });
    await writeFile(crt, "old", { mode: 0o666 });
    await chmod(key, 0o666);
    await chmod(crt, 0o666);
    await writePrivateFile(key, "new");
    await writePublicFile(crt, "new");
    expect(await mode(key)).toBe(0o600);
    expect(await mode(crt)).toBe(0o644);
  });
});

describe("the embedded database's socket folder", () => {
  it("is the preferred folder, made 0700, when the socket path fits", async () => {
    const s = await privateSocket(path.join(dir, "run"));
    expect(s.path).toBe(path.join(dir, "run", ".s.PGSQL.5432"));
    expect(await mode(s.dir)).toBe(0o700);
  });

  it("falls back to a fresh private temp folder when the path would pass the 107-byte limit", async () => {
    const deep = path.join(dir, "x".repeat(120));
    const s = await privateSocket(deep);
    try {
      expect(s.dir.startsWith(deep)).toBe(false);
      expect(Buffer.byteLength(s.path)).toBeLessThanOrEqual(107);
      expect(await mode(s.dir)).toBe(0o700);
    } finally {
      await s.dispose();
    }
  });

  it("refuses a preferred path that is a link (it could point where others can reach the socket)", async () => {
    const elsewhere = path.join(dir, "elsewhere");
    await mkdir(elsewhere, { mode: 0o700 });
    await symlink(elsewhere, path.join(dir, "run"));
    await expect(privateSocket(path.join(dir, "run"))).rejects.toThrow(/must be a folder owned by Tether's user/);
  });
});
