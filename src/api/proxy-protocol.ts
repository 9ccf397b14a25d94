import net from "node:net";
import type { Logger } from "pino";
import { Command, IPv4ProxyAddress, IPv6ProxyAddress, V1ProxyProtocol, V2ProxyProtocol } from "proxy-protocol-js";

/** The 12-byte signature that opens a PROXY protocol v2 header. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIGNATURE = Buffer.from("PROXY ");
/** A v1 line is at most 107 bytes (the specification's worst case, with CRLF). */
const V1_MAX = 107;
/** Addresses plus the TLVs HAProxy may add; anything longer is not a header we asked for. */
const V2_MAX = 16 + 2048;

export interface ProxyListenerOptions {
  /** Addresses and CIDR ranges that may send a PROXY header (validated by the config). */
  trusted: readonly string[];
  /** A trusted peer that has not finished its header by then is cut, ms. @default 5000 */
  headerTimeoutMs?: number;
  log: Logger;
}

/** The TCP listener in front of the TLS server, and where each connection really comes from. */
export interface ProxyListener {
  server: net.Server;
  /**
   * The client address of a connection accepted here: the PROXY header's source when a trusted
   * peer sent one, else the peer itself. Takes the TLS socket (same 4-tuple as the TCP one).
   */
  clientAddress(socket: { remoteAddress?: string; remotePort?: number }): string;
  /** Cuts every connection still open, also those still in their header or TLS handshake (shutdown). */
  destroyAll(): void;
}

/**
 * Accepts TCP connections for `tls` (the HTTP/2 secure server), reading a PROXY protocol v1/v2
 * header first when the peer is a trusted proxy, then hands the socket over by emitting
 * `connection` (Node's documented way to inject a socket into a TLS server; bytes already read
 * are put back with `unshift`, and the TLS socket reads them first).
 *
 * Only trusted peers are looked at: any other peer's bytes go to TLS untouched, so a PROXY header
 * from it fails the handshake and cannot name another address. A trusted peer may also connect
 * without a header (then it is the client), so a health check or a local tool still works.
 */
export function createProxyListener(tls: net.Server, opts: ProxyListenerOptions): ProxyListener {
  const trusted = new net.BlockList();
  for (const item of opts.trusted) {
    const [ip = "", prefix] = item.split("/");
    const family = net.isIPv6(ip) ? "ipv6" : "ipv4";
    if (prefix === undefined) trusted.addAddress(ip, family);
    else trusted.addSubnet(ip, Number(prefix), family);
  }
  const isTrusted = (address: string | undefined) =>
    opts.trusted.length > 0 && address !== undefined && trusted.check(address, net.isIPv6(address) ? "ipv6" : "ipv4");
  /** `peer address:port` → client address, for connections whose PROXY header named one. */
  const clients = new Map<string, string>();
  const key = (s: { remoteAddress?: string; remotePort?: number }) => `${s.remoteAddress}:${s.remotePort}`;

  const open = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (sock) => {
    open.add(sock);
    sock.once("close", () => open.delete(sock));
    if (!isTrusted(sock.remoteAddress)) {
      tls.emit("connection", sock);
      return;
    }
    readHeader(sock, opts.headerTimeoutMs ?? 5000).then(
      (client) => {
        if (sock.destroyed) return;
        if (client !== undefined) {
          const k = key(sock);
          clients.set(k, client);
          sock.once("close", () => clients.delete(k));
        }
        tls.emit("connection", sock);
      },
      (err: Error) => {
        opts.log.warn({ peer: sock.remoteAddress, reason: err.message }, "PROXY header refused: connection closed");
        sock.destroy();
      },
    );
  });
  return {
    server,
    clientAddress: (s) => clients.get(key(s)) ?? s.remoteAddress ?? "",
    destroyAll: () => {
      for (const sock of open) sock.destroy();
    },
  };
}

/**
 * Reads a PROXY header if the connection starts with one. Resolves with the client address it
 * names (undefined: no header, or a LOCAL/UNKNOWN one, so the peer is the client), leaving every
 * byte after it unread; rejects on a malformed, oversized or unfinished header.
 */
function readHeader(sock: net.Socket, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no complete header within ${timeoutMs} ms`)), timeoutMs);
    const finish = (err: Error | undefined, consumed = 0, client?: string) => {
      clearTimeout(timer);
      sock.off("readable", onReadable);
      sock.off("end", onEnd);
      sock.off("error", onEnd);
      if (err) return reject(err);
      if (consumed < buf.length) sock.unshift(buf.subarray(consumed));
      resolve(client);
    };
    const onEnd = () => finish(new Error("closed before the header ended"));
    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = sock.read() as Buffer | null) !== null) buf = Buffer.concat([buf, chunk]);
      try {
        const r = parse(buf);
        if (r !== "more") finish(undefined, r.consumed, r.client);
      } catch (err) {
        finish(err as Error);
      }
    };
    sock.on("readable", onReadable);
    sock.once("end", onEnd);
    sock.once("error", onEnd);
  });
}

/** "more" until the bytes so far decide; then how many belong to the header and whom it names. */
export function parse(buf: Buffer): "more" | { consumed: number; client?: string } {
  const startsLike = (sig: Buffer) => buf.subarray(0, sig.length).equals(sig.subarray(0, Math.min(sig.length, buf.length)));
  if (startsLike(V2_SIGNATURE)) {
    if (buf.length < 16) return "more";
    const total = 16 + buf.readUInt16BE(14);
    if (total > V2_MAX) throw new Error(`v2 header of ${total} bytes`);
    if (buf.length < total) return "more";
    const h = V2ProxyProtocol.parse(new Uint8Array(buf.subarray(0, total)));
    if (h.command === Command.LOCAL) return { consumed: total };
    if (h.proxyAddress instanceof IPv4ProxyAddress) return { consumed: total, client: h.proxyAddress.sourceAddress.address.join(".") };
    if (h.proxyAddress instanceof IPv6ProxyAddress) return { consumed: total, client: ipv6(h.proxyAddress.sourceAddress.address) };
    return { consumed: total }; // AF_UNSPEC or a Unix socket: nothing to key a client by
  }
  if (startsLike(V1_SIGNATURE)) {
    const end = buf.indexOf("\r\n");
    if (end < 0) {
      if (buf.length >= V1_MAX) throw new Error("v1 header without CRLF");
      return "more";
    }
    const line = buf.subarray(0, end + 2).toString("latin1");
    if (/^PROXY UNKNOWN[ \r]/.test(line)) return { consumed: end + 2 };
    let h: V1ProxyProtocol;
    try {
      h = V1ProxyProtocol.parse(line);
    } catch {
      throw new Error("malformed v1 header");
    }
    if (net.isIP(h.source.ipAddress) === 0) throw new Error("v1 header with a bad source address");
    return { consumed: end + 2, client: h.source.ipAddress };
  }
  return { consumed: 0 }; // not a PROXY header: the peer speaks TLS itself
}

/** The canonical (compressed) text of a 16-byte IPv6 address, as Node reports peers. */
function ipv6(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return new net.SocketAddress({ address: groups.join(":"), family: "ipv6" }).address;
}
