import net from "node:net";

export interface TcpProxy {
  port: number;
  /** Drops every open connection and refuses new ones, as a dead server or a broken network would. */
  cut(): void;
  /**
   * Drops traffic without closing anything, as a broken network path does: open connections stop
   * forwarding in both directions and new ones are accepted but go nowhere. Only keepalives notice.
   */
  partition(): void;
  /** Accepts connections again; after a partition, open connections forward again. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A loopback TCP forwarder placed between Tether and a shared service (PostgreSQL, a broker), so a
 * test can take the service away from one Tether without stopping it for everybody else.
 */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const open = new Set<net.Socket>();
  const pairs = new Set<[net.Socket, net.Socket]>();
  const held = new Set<net.Socket>();
  let up = true;
  let partitioned = false;
  const server = net.createServer((client) => {
    if (!up) return client.destroy();
    if (partitioned) {
      held.add(client.on("error", () => {}).on("close", () => held.delete(client)));
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
      pairs.delete(pair);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      up = false;
      for (const s of open) s.destroy();
      open.clear();
    },
    partition() {
      partitioned = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream).pause();
        upstream.unpipe(client).pause();
      }
    },
    restore() {
      up = true;
      if (!partitioned) return;
      partitioned = false;
      // Connections opened during the partition never reached the server: they time out.
      for (const s of held) s.destroy();
      held.clear();
      for (const [client, upstream] of pairs) {
        client.pipe(upstream);
        upstream.pipe(client);
      }
    },
    close() {
      for (const s of [...open, ...held]) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
