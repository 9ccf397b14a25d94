/**
 * Child-process entry: the webhook receivers of bench:events, one HTTPS server with `/hook/{i}`
 * per subscription, in a process of their own so that receiving (TLS, parsing) is not charged to
 * the process holding the gRPC callers, whose closed loop measures the task rate. Calls over the
 * IPC channel (child-rpc.ts): start, reset, read, close.
 */
import { once } from "node:events";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { summarize } from "./stats.js";

interface Call {
  id: number;
  method: "start" | "reset" | "read" | "close";
  arg: unknown;
}

let server: https.Server | undefined;
let delivered = 0;
let results = 0;
let latencies: number[] = [];
const perPath = new Map<string, number>();

const methods: Record<Call["method"], (arg: unknown) => Promise<unknown>> = {
  async start(arg) {
    const tls = arg as { cert: string; key: string };
    server = https.createServer({ cert: tls.cert, key: tls.key, keepAliveTimeout: 30_000 }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const at = Date.now();
        res.writeHead(200).end();
        if (req.headers["tether-event-type"] === undefined) return; // the baseline's requests
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { time?: string; task?: { state?: string } };
        delivered++;
        if (body.task?.state?.endsWith("SUCCEEDED")) results++;
        if (body.time) latencies.push(at - Date.parse(body.time));
        perPath.set(req.url ?? "", (perPath.get(req.url ?? "") ?? 0) + 1);
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return (server.address() as AddressInfo).port;
  },
  async reset() {
    delivered = 0;
    results = 0;
    latencies = [];
    perPath.clear();
  },
  async read() {
    return { delivered, results, latency: summarize(latencies), paths: perPath.size, cpu: process.cpuUsage() };
  },
  async close() {
    server?.closeAllConnections();
    server?.close();
  },
};

process.on("message", (call: Call) => {
  methods[call.method](call.arg).then(
    (result) => process.send?.({ id: call.id, result }),
    (err: unknown) => process.send?.({ id: call.id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }),
  );
});
process.on("disconnect", () => void methods.close(undefined).finally(() => process.exit(0)));
