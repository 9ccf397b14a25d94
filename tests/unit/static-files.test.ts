import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HttpRoute } from "../../src/api/server.js";
import { staticFiles } from "../../src/api/static-files.js";

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  raw: Buffer;
}

/** Calls the route as the API server's fallback would, with a minimal request and response. */
async function get(route: HttpRoute, url: string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const answer: Answer = { status: 0, headers: {}, body: "", raw: Buffer.alloc(0) };
  const req = { method: init.method ?? "GET", url, headers: init.headers ?? {} };
  let done!: () => void;
  const ended = new Promise<void>((r) => (done = r));
  const res = {
    writeHead(status: number, headers: Record<string, string>) {
      answer.status = status;
      answer.headers = headers;
    },
    end(body?: Buffer | string) {
      answer.raw = body === undefined ? Buffer.alloc(0) : Buffer.from(body);
      answer.body = answer.raw.toString();
      done();
    },
  };
  expect(route.match(new URL(url, "https://x").pathname)).toBe(true);
  await route.handle(req as never, res as never);
  await ended;
  return answer;
}

describe("staticFiles", () => {
  let dir: string;
  let route: HttpRoute;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "tether-static-"));
    await mkdir(path.join(dir, "dist/assets"), { recursive: true });
    await writeFile(path.join(dir, "dist/index.html"), "<!doctype html><title>console</title>");
    await writeFile(path.join(dir, "dist/assets/main-abc123.js"), "console.log(1)");
    await writeFile(path.join(dir, "dist/favicon.svg"), "<svg/>");
    await writeFile(path.join(dir, "secret.txt"), "outside the root");
    route = staticFiles({ root: path.join(dir, "dist"), missingHint: "build me\n" });
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("serves files with their content type; hashed assets are immutable, index.html revalidates", async () => {
    const js = await get(route, "/assets/main-abc123.js");
    expect(js.status).toBe(200);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const index = await get(route, "/");
    expect(index.body).toContain("<title>console</title>");
    expect(index.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(index.headers["cache-control"]).toBe("no-cache");
    expect(index.headers["content-security-policy"]).toContain("default-src 'self'");
    expect((await get(route, "/favicon.svg")).headers["content-type"]).toBe("image/svg+xml");
  });

  it("gzips text files for clients that accept it", async () => {
    const big = "export const x = 1;\n".repeat(500);
    await writeFile(path.join(dir, "dist/assets/big-def456.js"), big);
    const z = await get(route, "/assets/big-def456.js", { headers: { "accept-encoding": "gzip, deflate, br" } });
    expect(z.headers["content-encoding"]).toBe("gzip");
    expect(z.headers.vary).toBe("accept-encoding");
    expect(gunzipSync(z.raw).toString()).toBe(big);
    expect(Number(z.headers["content-length"])).toBeLessThan(big.length / 5);
    const plain = await get(route, "/assets/big-def456.js");
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body).toBe(big);
  });

  it("answers 304 to a matching If-None-Match", async () => {
    const first = await get(route, "/");
    const again = await get(route, "/", { headers: { "if-none-match": first.headers.etag! } });
    expect(again.status).toBe(304);
    expect(again.body).toBe("");
  });

  it("falls back to index.html for app routes, but not for missing files or RPC-shaped paths", async () => {
    const deep = await get(route, "/devices/led-1");
    expect(deep.status).toBe(200);
    expect(deep.body).toContain("<title>console</title>");
    expect((await get(route, "/assets/missing-123.js")).status).toBe(404);
    expect(route.match("/tether.v1.AuthService/Login")).toBe(false);
  });

  it("never leaves the root, however the path is spelled", async () => {
    for (const url of ["/../secret.txt", "/%2e%2e/secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt", "/%2e%2e%5csecret.txt"]) {
      const a = await get(route, url);
      expect(a.body, url).not.toContain("outside the root");
    }
  });

  it("refuses writes and says how to build the console when it is missing", async () => {
    expect((await get(route, "/", { method: "POST" })).status).toBe(405);
    const missing = staticFiles({ root: path.join(dir, "nope"), missingHint: "build me\n" });
    const a = await get(missing, "/");
    expect(a.status).toBe(404);
    expect(a.body).toBe("build me\n");
  });
});
