import type { Logger } from "pino";
import type { PresentedCertificate } from "../core/certificates/certificate-gate.js";
import { TetherError } from "../core/errors.js";
import type { FirmwareRecord } from "../core/firmware/firmware-record.js";
import { contextValuesFromRequest, kPrincipal } from "./auth.js";
import type { HttpRoute } from "./server.js";

const PATH = /^\/firmwares\/([^/]+)\/image$/;

export interface FirmwareDownloadOptions {
  /** The published image a device may download (its own kind only), or a NOT_FOUND TetherError. */
  open(deviceId: string, firmwareId: string): Promise<FirmwareRecord>;
  read(r: FirmwareRecord, start: number, end: number): AsyncIterable<Uint8Array>;
  isRevoked(serialNumber: string): boolean;
  checkCertificate(c: PresentedCertificate): Promise<string | undefined>;
  log: Logger;
}

type Handle = HttpRoute["handle"];
type Req = Parameters<Handle>[0];
type Res = Parameters<Handle>[1];

/**
 * `GET /firmwares/{firmware}/image` on the API port: a device downloads a published image of its
 * own kind with its device certificate (the same checks as the device gateway: not revoked, not
 * of a deleted incarnation). Single HTTP ranges (`bytes=N-`, `bytes=N-M`, `bytes=-N`) resume a
 * cut download; the ETag is the image's SHA-256, so `If-Range` with it is safe. The body streams
 * from the chunk rows a couple of MiB at a time, with back-pressure: memory does not grow with
 * the image size or the number of downloads beyond that.
 */
export function firmwareDownloadRoute(o: FirmwareDownloadOptions): HttpRoute {
  return {
    match: (pathname) => PATH.test(pathname),
    async handle(req, res) {
      try {
        await serve(o, req, res);
      } catch (err) {
        if (res.headersSent) {
          o.log.warn({ err }, "firmware download cut");
          res.destroy();
          return;
        }
        o.log.error({ err }, "firmware download failed");
        text(res, 500, "internal error\n");
      }
    },
  };
}

async function serve(o: FirmwareDownloadOptions, req: Req, res: Res): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return text(res, 405, "method not allowed\n");
  }
  req.resume();
  // The principal from the client certificate, exactly as the RPCs read it; a bearer token is no credential here.
  const principal = contextValuesFromRequest(req).get(kPrincipal);
  if (!principal) return text(res, 401, "a device certificate issued by this Tether's CA is required\n");
  if (principal.kind !== "device")
    return text(res, 403, `firmware images are for devices: call with a device certificate (OU=devices), not as ${principal.kind} ${principal.id}\n`);
  const serial = principal.serialNumber ?? "";
  if (o.isRevoked(serial)) return text(res, 401, `the client certificate ${serial} has been revoked\n`);
  const refusal = await o.checkCertificate({ kind: "device", commonName: principal.id, serialNumber: serial, notBefore: principal.notBefore ?? new Date(0) });
  if (refusal) return text(res, 401, `the client certificate is refused: ${refusal}\n`);

  const pathname = new URL(req.url ?? "/", "https://localhost").pathname;
  const id = decodeURIComponent(PATH.exec(pathname)![1]!);
  let f: FirmwareRecord;
  try {
    f = await o.open(principal.id, id);
  } catch (err) {
    if (err instanceof TetherError && err.code === "NOT_FOUND") return text(res, 404, `${err.message} (for device ${principal.id})\n`);
    throw err;
  }
  const etag = `"${f.sha256}"`;
  const size = f.sizeBytes;
  const range = wantedRange(req, etag, size);
  const common = {
    "accept-ranges": "bytes",
    etag,
    "content-type": "application/octet-stream",
    "cache-control": "private, no-transform",
  };
  if (range === "unsatisfiable") {
    res.writeHead(416, { ...common, "content-range": `bytes */${size}`, "content-type": "text/plain; charset=utf-8" });
    res.end("range not satisfiable\n");
    return;
  }
  const [start, end] = range ?? [0, size];
  res.writeHead(range ? 206 : 200, {
    ...common,
    "content-length": String(end - start),
    ...(range ? { "content-range": `bytes ${start}-${end - 1}/${size}` } : {}),
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  let closed = false;
  res.once("close", () => (closed = true));
  for await (const part of o.read(f, start, end)) {
    if (closed) return; // the device went away: stop reading rows
    if (!res.write(part)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    }
  }
  res.end();
}

/**
 * The single byte range asked for, as [start, end) — undefined for the whole image (no Range, an
 * If-Range that does not match the current ETag, several ranges, or a unit other than bytes), or
 * "unsatisfiable" when it starts at or past the end.
 */
export function wantedRange(req: Pick<Req, "headers">, etag: string, size: number): [number, number] | undefined | "unsatisfiable" {
  const header = req.headers.range;
  if (typeof header !== "string") return undefined;
  const ifRange = req.headers["if-range"];
  if (typeof ifRange === "string" && ifRange.trim() !== etag) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0) return "unsatisfiable";
    return [Math.max(0, size - n), size];
  }
  const start = Number(m[1]);
  if (start >= size) return "unsatisfiable";
  const last = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (last < start) return undefined;
  return [start, last + 1];
}

function text(res: Res, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
