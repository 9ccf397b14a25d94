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
  /** The sender's TCP port (which process sent it: see `ss -tnp`). */
  remotePort: number;
}

/**
 * A local HTTPS webhook endpoint (node:https, a certificate from the dev PKI). `mode` decides
 * each answer: 200, an error status, or never answering ("hang"); `secrets` are what it verifies
 * signatures with (any one matching is enough, as a real receiver during a rotation).
 */
export async function startReceiver(tls: { cert: string; key: string }) {
  const received: Received[] = [];
  const hanging = new Set<import("node:http").ServerResponse>();
  const inFlight = new Map<string, number>();
  const r = {
    received,
    mode: 200 as number | "hang",
    /**
     * When > 0, the first `failFirst` requests of each event id are answered 503 whatever `mode`
     * says: an outage every event lives through, without the test racing the sender's back-off.
     */
    failFirst: 0,
    /** How long each answer waits (a slow endpoint widens the window for concurrent duplicates). */
    delayMs: 0,
    /** Requests that arrived while another one with the same event id was still being answered. */
    overlaps: 0,
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
      const eventId = String(req.headers["tether-event-id"] ?? "");
      const triesBefore = received.filter((x) => x.eventId === eventId).length;
      const answer = triesBefore < r.failFirst ? 503 : r.mode;
      received.push({
        eventId,
        type: String(req.headers["tether-event-type"] ?? ""),
        attempt: Number(req.headers["tether-delivery-attempt"] ?? 0),
        contentType: String(req.headers["content-type"] ?? ""),
        signature,
        body,
        verified: r.secrets.some((s) => verifySignature(signature, s, body, now)),
        answer,
        remotePort: req.socket.remotePort ?? 0,
      });
      if (answer === "hang") {
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      }
      const mode = answer;
      if (r.delayMs === 0) return void res.writeHead(mode).end();
      if (inFlight.has(eventId)) r.overlaps++;
      inFlight.set(eventId, (inFlight.get(eventId) ?? 0) + 1);
      setTimeout(() => {
        const n = inFlight.get(eventId)! - 1;
        if (n === 0) inFlight.delete(eventId);
        else inFlight.set(eventId, n);
        res.writeHead(mode).end();
      }, r.delayMs);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  r.url = `https://localhost:${(server.address() as AddressInfo).port}/hook`;
  return r;
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
