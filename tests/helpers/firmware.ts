import { createHash } from "node:crypto";
import https from "node:https";
import type { Client } from "@connectrpc/connect";
import type { ProductKind } from "../../gen/tether/v1/device_pb.js";
import type { Firmware } from "../../gen/tether/v1/firmware_pb.js";
import type { FirmwareService } from "../../gen/tether/v1/firmware_service_pb.js";
import type { Pem, TestStack } from "./stack.js";

/** Deterministic pseudo-random bytes: an "image" whose every byte position matters. */
export function image(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let block = Buffer.alloc(0);
  for (let i = 0, n = 0; i < size; i += block.length, n++) {
    block = createHash("sha256").update(`${seed}:${n}`).digest();
    block.copy(out, i, 0, Math.min(block.length, size - i));
  }
  return out;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Begin, chunks of `chunk` bytes, commit (with the SHA-256 unless `sha` overrides it): the CLI's protocol. */
export async function upload(
  client: Client<typeof FirmwareService>,
  f: { kind: ProductKind; version: string; id?: string; hardwareLabels?: string[] },
  bytes: Buffer,
  chunk = 1024 * 1024,
): Promise<Firmware> {
  const begun = await client.beginFirmwareUpload({ firmwareId: f.id ?? "", firmware: { kind: f.kind, version: f.version, hardwareLabels: f.hardwareLabels } });
  for (let off = 0; off < bytes.length; off += chunk) {
    await client.uploadFirmwareChunk({ name: begun.name, offset: BigInt(off), data: bytes.subarray(off, off + chunk) });
  }
  return client.commitFirmwareUpload({ name: begun.name, sha256: sha256(bytes) });
}

/** An HTTPS GET on the API port (HTTP/1.1) with an optional client certificate, as a device's HTTP client would. */
export function httpsGet(
  s: TestStack,
  path: string,
  pem: Partial<Pem>,
  headers: Record<string, string> = {},
  opts: { method?: string; abortAfterBytes?: number } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${s.baseUrl}${path}`,
      { method: opts.method ?? "GET", ca: pem.ca ?? s.admin.ca, cert: pem.cert, key: pem.key, headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        let got = 0;
        res.on("data", (d: Buffer) => {
          parts.push(d);
          got += d.length;
          // A link lost mid-download: keep what arrived, cut the connection.
          if (opts.abortAfterBytes !== undefined && got >= opts.abortAfterBytes) {
            req.destroy();
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) });
          }
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on("error", reject);
      },
    );
    req.on("error", (err) => (opts.abortAfterBytes !== undefined ? undefined : reject(err)));
    req.end();
  });
}
