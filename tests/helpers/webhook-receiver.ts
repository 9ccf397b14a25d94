import { once } from "node:events";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { verifySignature } from "../../src/core/webhooks/signature.js";

/** One request a receiver got. */
export interface Received {
  eventId: string;
  type: string;
  attempt: number;
  contentType: string;
  signature: string;
  body: Buffer;
  /** Whether the signature verified with the receiver's current secrets. */
  verified: boolean;
  /** What the receiver answered. */
  answer: number | "hang";
}

/**
 * A local HTTPS webhook endpoint (node:https, a certificate from the dev PKI). `mode` decides
 * each answer: 200, an error status, or never answering ("hang"); `secrets` are what it verifies
 * signatures with (any one matching is enough, as a real receiver during a rotation).
 */
export async function startReceiver(tls: { cert: string; key: string }) {
  const received: Received[] = [];
  const hanging = new Set<import("node:http").ServerResponse>();
  const r = {
    received,
    mode: 200 as number | "hang",
    secrets: [] as string[],
    url: "",
    /** Requests held open by "hang" mode right now. */
    hanging: () => hanging.size,
    /** Distinct event ids received (any answer). */
    ids: () => new Set(received.map((x) => x.eventId)),
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const signature = String(req.headers["tether-signature"] ?? "");
      const now = Math.floor(Date.now() / 1000);
      received.push({
        eventId: String(req.headers["tether-event-id"] ?? ""),
        type: String(req.headers["tether-event-type"] ?? ""),
        attempt: Number(req.headers["tether-delivery-attempt"] ?? 0),
        contentType: String(req.headers["content-type"] ?? ""),
        signature,
        body,
        verified: r.secrets.some((s) => verifySignature(signature, s, body, now)),
        answer: r.mode,
      });
      if (r.mode === "hang") {
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      }
      res.writeHead(r.mode).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  r.url = `https://localhost:${(server.address() as AddressInfo).port}/hook`;
  return r;
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
