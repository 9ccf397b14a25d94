import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { createSecureContext, rootCertificates } from "node:tls";
import type { WebhookSender } from "../core/ports/webhooks.js";
import { blockedAddress } from "./address-policy.js";

/**
 * Webhook requests over node:https, one keep-alive agent per subscription with at most
 * `maxSockets` connections, so subscriptions never queue behind each other's sockets. Each
 * connection's address is checked when it is resolved (unless `allowHttp`), so a name that
 * resolves to loopback after it was accepted is still refused. `ca` adds trusted roots
 * (TETHER_WEBHOOK_CA_FILE) to Node's own.
 */
export function createHttpSender(opts: { allowHttp: boolean; maxSockets: number; ca?: string[] }): WebhookSender {
  const agents = new Map<string, { https: https.Agent; http: http.Agent }>();
  const guarded: LookupFunction = (host, options, cb) => {
    dnsLookup(host, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return cb(err, "", 4);
      const bad = opts.allowHttp ? undefined : addresses.map((a) => blockedAddress(a.address)).find(Boolean);
      if (bad) return cb(Object.assign(new Error(`refused: ${bad}`), { code: "EADDRNOTALLOWED" }), "", 4);
      if ((options as { all?: boolean }).all) return (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
      cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  // One TLS context for every connection: given as `ca`, Node would parse Node's ~140 roots again
  // for each new connection and copy them all into the agent's key string on every request.
  const secureContext = opts.ca && opts.ca.length > 0 ? createSecureContext({ ca: [...rootCertificates, ...opts.ca] }) : undefined;

  function agentsOf(key: string) {
    let a = agents.get(key);
    if (!a) {
      const common = { keepAlive: true, maxSockets: opts.maxSockets, lookup: guarded };
      a = { https: new https.Agent({ ...common, secureContext }), http: new http.Agent(common) };
      agents.set(key, a);
    }
    return a;
  }

  return {
    send(key, req) {
      const url = new URL(req.url);
      const a = agentsOf(key);
      const lib = url.protocol === "https:" ? https : http;
      if (url.protocol === "http:" && !opts.allowHttp) return Promise.reject(new Error("http:// refused"));
      return new Promise((resolve, reject) => {
        const r = lib.request(
          url,
          {
            method: "POST",
            agent: url.protocol === "https:" ? a.https : a.http,
            headers: { ...req.headers, "content-length": String(req.body.byteLength), "user-agent": "Tether-Webhooks/1" },
          },
          (res) => {
            clearTimeout(deadline);
            // The body is not needed; draining it keeps the connection reusable.
            res.resume();
            resolve({ status: res.statusCode ?? 0 });
          },
        );
        // One timer for the whole request, to the answer's headers (an AbortSignal.timeout per
        // request costs a signal, its listeners and a DOMException each: measurable at thousands a second).
        const deadline = setTimeout(() => r.destroy(new Error(`timeout after ${req.timeoutMs} ms`)), req.timeoutMs);
        r.on("error", (err) => {
          clearTimeout(deadline);
          reject(err);
        });
        r.end(req.body);
      });
    },
    forget(key) {
      const a = agents.get(key);
      a?.https.destroy();
      a?.http.destroy();
      agents.delete(key);
    },
    async close() {
      for (const key of [...agents.keys()]) this.forget(key);
    },
  };
}
