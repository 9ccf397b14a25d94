import type { HttpRoute } from "./server.js";

/**
 * `GET /crl.pem` on the API port, for anyone (CRLs are public and signed): relying parties such as
 * external brokers, proxies and devices fetch it without a client certificate.
 */
export function crlRoute(current: () => string | undefined): HttpRoute {
  return {
    match: (pathname) => pathname === "/crl.pem",
    handle(req, res) {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
        res.end("method not allowed\n");
        return;
      }
      const pem = current();
      res.writeHead(pem ? 200 : 503, { "content-type": pem ? "application/x-pem-file" : "text/plain; charset=utf-8", "cache-control": "no-cache" });
      if (req.method === "HEAD") res.end();
      else res.end(pem ?? "CRL not published yet\n");
    },
  };
}
