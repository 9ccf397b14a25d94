import { Http2ServerResponse } from "node:http2";
import type { connectNodeAdapter } from "@connectrpc/connect-node";

type NodeHandlerFn = NonNullable<Parameters<typeof connectNodeAdapter>[0]["fallback"]>;
type Request = Parameters<NodeHandlerFn>[0];
type Response = Parameters<NodeHandlerFn>[1];

/** gRPC (`application/grpc[+proto|+json]`) and gRPC-Web (`application/grpc-web[-text][+…]`). */
const GRPC = /^application\/grpc(-web(-text)?)?([+;].*)?$/i;
/** Connect unary (`application/json|proto`) and streaming (`application/connect+json|proto`). */
const CONNECT = /^application\/(json|proto|connect\+(json|proto))\s*(;.*)?$/i;

/**
 * Answers a call to a method this server does not have the way its protocol expects, instead of
 * the plain-text HTTP 404 a web server would send: gRPC clients (grpc-js, C-core, grpc-go) read a
 * 404 without `grpc-status` as a transport failure ("header parse error", UNAVAILABLE/UNKNOWN)
 * rather than UNIMPLEMENTED. So gRPC and gRPC-Web get HTTP 200 with a trailers-only response
 * (`grpc-status: 12`, `grpc-message`), Connect gets its own 404 JSON error (`unimplemented`).
 * Returns false for anything that is not an RPC (the static files and the CRL answer those).
 */
export function answerUnknownMethod(req: Request, res: Response): boolean {
  const type = String(req.headers["content-type"] ?? "");
  const pathname = new URL(req.url ?? "/", "https://localhost").pathname;
  const grpc = req.method === "POST" && GRPC.test(type);
  const connect =
    (req.method === "POST" && CONNECT.test(type)) ||
    (req.method === "GET" && new URL(req.url ?? "/", "https://localhost").searchParams.get("connect") === "v1");
  if (!grpc && !connect) return false;
  req.resume(); // the request body is of no use; drain it so the stream can close
  const message = `unknown method ${printable(pathname)}: this server has no such service or method (list them with server reflection)`;
  if (grpc) {
    const headers = {
      ...res.getHeaders(), // what the server set for every response (security headers)
      "content-type": type.split(/[;+]/)[0]!.toLowerCase().startsWith("application/grpc-web") ? type : "application/grpc",
      "grpc-status": "12", // UNIMPLEMENTED
      "grpc-message": grpcPercentEncode(message),
    };
    // Trailers-only: one HEADERS frame that ends the stream, which is what gRPC over HTTP/2 means
    // by "no messages, this status". (writeHead + end would send an empty DATA frame after it.)
    if (res instanceof Http2ServerResponse) res.stream.respond({ ":status": 200, ...headers }, { endStream: true });
    else {
      res.writeHead(200, headers);
      res.end();
    }
    return true;
  }
  const body = JSON.stringify({ code: "unimplemented", message });
  res.writeHead(404, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
  return true;
}

/**
 * The gRPC spec's percent-encoding of `grpc-message`: only `%` and bytes outside printable ASCII
 * are escaped (encodeURIComponent would also escape `/` and `:`, which clients show verbatim).
 */
function grpcPercentEncode(text: string): string {
  return Array.from(Buffer.from(text, "utf8"), (b) =>
    b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, "0")}`,
  ).join("");
}

/** The path as it may appear in a message: bounded, and only characters safe in any log or header. */
function printable(pathname: string): string {
  return pathname.slice(0, 200).replace(/[^\w./-]/g, "?");
}
