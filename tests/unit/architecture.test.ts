import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");
const SRC = path.join(ROOT, "src");
/** I/O libraries: only adapters may use them. */
const IO_LIBRARIES = [
  "mqtt",
  "amqplib",
  "postgres",
  "pg",
  "aedes",
  "@electric-sql/pglite",
  "@electric-sql/pglite-socket",
  "@connectrpc/connect-node",
  "pino",
  "prom-client",
];
const IO_BUILTINS = /^node:(fs|fs\/promises|net|tls|http|https|http2|dgram|child_process|worker_threads)$/;
/** The adapters: each implements core ports; none of them may reach into the API layer. */
const ADAPTERS = ["store", "bus", "link", "pki", "ops", "sim", "device", "webhooks"];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

/** Every import of a source file: `{ spec, target }`, target being the resolved path (relative imports only). */
function imports(file: string): Array<{ spec: string; target?: string }> {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => {
    const spec = m[1]!;
    return { spec, target: spec.startsWith(".") ? path.resolve(path.dirname(file), spec) : undefined };
  });
}

/** The top folder under src/ of a resolved path: `core`, `store`, … (`app` for src/app.ts and src/app/). */
function area(target: string): string | undefined {
  const rel = path.relative(SRC, target);
  if (rel.startsWith("..")) return undefined;
  return rel.split(path.sep)[0]!.replace(/\.(js|ts)$/, "");
}

function offenders(dir: string, refuse: (imp: { spec: string; target?: string }) => string | undefined): string[] {
  const out: string[] = [];
  for (const f of files(path.join(SRC, dir))) {
    for (const imp of imports(f)) {
      const why = refuse(imp);
      if (why) out.push(`${path.relative(ROOT, f)} imports ${imp.spec} (${why})`);
    }
  }
  return out;
}

describe("ports and adapters", () => {
  it("src/core imports no adapter, no I/O library and no I/O built-in: it talks to ports", () => {
    const found = offenders("core", ({ spec, target }) => {
      if (IO_LIBRARIES.includes(spec)) return "an I/O library";
      if (IO_BUILTINS.test(spec)) return "an I/O built-in";
      const a = target && area(target);
      if (a && a !== "core" && a !== "protocol") return `the ${a} adapter`;
      return undefined;
    });
    expect(found).toEqual([]);
  });

  it("adapters do not import the API layer (or the composition root)", () => {
    const found = ADAPTERS.flatMap((dir) =>
      offenders(dir, ({ target }) => {
        const a = target && area(target);
        return a === "api" || a === "app" || a === "cli" ? `the ${a} layer` : undefined;
      }),
    );
    expect(found).toEqual([]);
  });

  it("the device SDK imports only the protocol module and generated code (never the server's link code)", () => {
    const found = offenders("device", ({ target }) => {
      if (!target) return undefined; // npm packages and built-ins: a device brings its own transport
      const rel = path.relative(ROOT, target);
      return rel.startsWith("gen/") || rel.startsWith("src/protocol/") || rel.startsWith("src/device/") ? undefined : "outside protocol/ and gen/";
    });
    expect(found).toEqual([]);
  });

  it("src/protocol is shared by server, SDK and PKI, so it depends on nothing but generated code", () => {
    const found = offenders("protocol", ({ target }) => {
      if (!target) return undefined;
      const rel = path.relative(ROOT, target);
      return rel.startsWith("gen/") || rel.startsWith("src/protocol/") ? undefined : "outside protocol/ and gen/";
    });
    expect(found).toEqual([]);
  });

  it("the refusal rules can fail: they catch a core file importing the store and node:net", () => {
    const fake = path.join(SRC, "core/x.ts");
    expect(area(path.resolve(path.dirname(fake), "../store/task-store.js"))).toBe("store");
    expect(IO_BUILTINS.test("node:net")).toBe(true);
    expect(IO_BUILTINS.test("node:crypto")).toBe(false);
  });
});
