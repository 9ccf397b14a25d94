import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { promisify } from "node:util";
import { gzip as gzipCb } from "node:zlib";
import path from "node:path";
import type { HttpRoute } from "./server.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".ico": "image/x-icon",
  ".webp": "image/webp",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
};

const gzip = promisify(gzipCb);
/** Types worth compressing (the console's JavaScript shrinks about 3×). */
const COMPRESSIBLE = new Set([".html", ".js", ".mjs", ".css", ".json", ".map", ".svg", ".txt"]);

/**
 * A path shaped like an RPC (`/package.Service/Method`). Those never fall back to the single-page
 * app: a client calling a method this server lacks must see 404, not a 200 with HTML.
 */
const RPC_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+\/[A-Za-z_]\w*$/;

/**
 * Locked down for the console: scripts and styles from this origin only (uPlot sets inline style
 * attributes), RPCs to this origin only, never framed. A script injected through data cannot run,
 * which is what keeps the in-memory access token out of reach.
 */
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

export interface StaticFilesOptions {
  /** The directory served at `/` (the console's `vite build` output). */
  root: string;
  /** Shown at `/` when `root/index.html` does not exist, e.g. how to build the console. */
  missingHint: string;
}

/**
 * Serves a built single-page app from `root`: files with their content type, hashed assets
 * (`/assets/name-<hash>.js`) cached for a year, `index.html` revalidated every time, and any other
 * GET of a path without a file extension answered with `index.html` so the app's own routes
 * (`/devices/kitchen-1`) survive a reload. Text files are gzipped for clients that accept it. Paths are resolved inside `root`; `..`, encoded or not,
 * cannot leave it. The directory is read per request, so a rebuild is picked up without a restart.
 */
export function staticFiles(opts: StaticFilesOptions): HttpRoute {
  const root = path.resolve(opts.root);
  // Compressed bodies by ETag: the files change only on a rebuild, so each is gzipped once.
  const gzipped = new Map<string, Buffer>();
  return {
    match: (pathname) => !RPC_PATH.test(pathname),
    async handle(req, res) {
      const send = (status: number, headers: Record<string, string>, body?: Buffer | string) => {
        res.writeHead(status, { ...SECURITY_HEADERS, ...headers });
        if (req.method === "HEAD" || body === undefined) res.end();
        else res.end(body);
      };
      if (req.method !== "GET" && req.method !== "HEAD") {
        return send(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }, "method not allowed\n");
      }
      const file = await resolveFile(root, req.url ?? "/");
      if (file === undefined) return send(400, { "content-type": "text/plain; charset=utf-8" }, "bad path\n");
      let target = await existingFile(file);
      if (!target && path.extname(file) === "") target = await existingFile(path.join(root, "index.html"));
      if (!target) {
        if (!(await existingFile(path.join(root, "index.html")))) {
          return send(404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" }, opts.missingHint);
        }
        return send(404, { "content-type": "text/plain; charset=utf-8" }, "not found\n");
      }
      const body = await readFile(target.path);
      const etag = `"${createHash("sha1").update(body).digest("base64url").slice(0, 22)}"`;
      const hashed = path.relative(root, target.path).startsWith(`assets${path.sep}`);
      const headers = {
        "content-type": CONTENT_TYPES[path.extname(target.path).toLowerCase()] ?? "application/octet-stream",
        "cache-control": hashed ? "public, max-age=31536000, immutable" : "no-cache",
        vary: "accept-encoding",
        etag,
      };
      if (req.headers["if-none-match"] === etag) return send(304, headers);
      const accepts = String(req.headers["accept-encoding"] ?? "");
      if (COMPRESSIBLE.has(path.extname(target.path).toLowerCase()) && body.length > 1024 && /\bgzip\b/.test(accepts)) {
        let z = gzipped.get(etag);
        if (!z) {
          z = await gzip(body);
          if (gzipped.size > 256) gzipped.clear();
          gzipped.set(etag, z);
        }
        return send(200, { ...headers, "content-encoding": "gzip", "content-length": String(z.length) }, z);
      }
      send(200, { ...headers, "content-length": String(body.length) }, body);
    },
  };
}

/** The file a request URL names inside `root`, or undefined when the path is malformed or escapes. */
async function resolveFile(root: string, url: string): Promise<string | undefined> {
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url, "https://localhost").pathname);
  } catch {
    return undefined;
  }
  if (pathname.includes("\0") || pathname.includes("\\")) return undefined;
  const file = path.resolve(root, `.${path.posix.normalize(pathname)}`);
  if (file !== root && !file.startsWith(root + path.sep)) return undefined;
  return file === root || pathname.endsWith("/") ? path.join(file, "index.html") : file;
}

async function existingFile(file: string): Promise<{ path: string } | undefined> {
  try {
    return (await stat(file)).isFile() ? { path: file } : undefined;
  } catch {
    return undefined;
  }
}
