import https from "node:https";
import { Readable } from "node:stream";

/**
 * A `fetch` that trusts `ca` (the test stack's CA), over HTTP/1.1 with node:https: Node's global
 * fetch takes its CAs from the process, and undici is not a dependency to pass an Agent to.
 * Streams the response body, so server-sent events work too. `client`: a client certificate to present.
 */
export function caFetch(ca: Buffer, client?: { cert: Buffer; key: Buffer }): (url: string | URL, init?: RequestInit) => Promise<Response> {
  const agent = new https.Agent({ ca, ...client, keepAlive: false });
  return async (url, init = {}) => {
    const body = init.body === undefined || init.body === null ? undefined : Buffer.from(await new Response(init.body).arrayBuffer());
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    return new Promise<Response>((resolve, reject) => {
      const req = https.request(new URL(url), { method: init.method ?? "GET", headers, agent, signal: init.signal ?? undefined }, (res) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(", ") : v);
        const status = res.statusCode ?? 500;
        const stream = status === 204 || status === 304 ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(stream, { status, headers: h }));
      });
      req.on("error", reject);
      req.end(body);
    });
  };
}
