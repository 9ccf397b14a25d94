import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const FORBIDDEN = ["mqtt", "amqplib", "postgres", "pg", "aedes", "@electric-sql/pglite", "node:net", "node:tls", "node:http2", "@connectrpc/connect-node", "pino"];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith(".ts") ? [path.join(dir, e.name)] : []));
}

describe("ports and adapters", () => {
  it("keeps I/O libraries out of src/core: the core talks to ports, adapters live beside them", () => {
    const offenders: string[] = [];
    for (const f of files(path.join(ROOT, "src/core"))) {
      for (const m of readFileSync(f, "utf8").matchAll(/from\s+"([^"]+)"/g)) {
        if (FORBIDDEN.includes(m[1]!) || m[1]!.includes("/store/") || m[1]!.includes("/link/") || m[1]!.includes("/api/")) {
          offenders.push(`${path.relative(ROOT, f)} imports ${m[1]}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});
