/**
 * What-if switch (BENCH_TCP_NODELAY=1): turns Nagle's algorithm off on every TLS socket this thread
 * opens or accepts, by wrapping `tls.connect` and `tls.createServer` before Tether starts. Neither
 * the embedded broker (aedes behind `tls.createServer`) nor mqtt.js (Tether's bridge, the device
 * SDK) sets TCP_NODELAY today, so a lone small MQTT message can wait for a delayed ACK (~40 ms on
 * Linux loopback) at each hop. This shows what the fix in src/ would buy without editing src/.
 */
import { syncBuiltinESMExports } from "node:module";
import tls from "node:tls";

let applied = false;

export function forceTcpNoDelay(): void {
  if (applied) return;
  applied = true;
  const connect = tls.connect;
  const createServer = tls.createServer;
  (tls as { connect: unknown }).connect = (...args: unknown[]) => {
    const socket = (connect as (...a: unknown[]) => tls.TLSSocket)(...args);
    socket.setNoDelay(true);
    return socket;
  };
  (tls as { createServer: unknown }).createServer = (options: tls.TlsOptions, listener?: (s: tls.TLSSocket) => void) =>
    createServer({ ...options, noDelay: true }, listener);
  // ESM `import { createServer } from "node:tls"` bindings follow the CommonJS exports only after this.
  syncBuiltinESMExports();
}
