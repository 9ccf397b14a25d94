/**
 * Setup file of the unit project: tests/unit opens no sockets. A unit test that connects or listens
 * (even on localhost) fails at once, naming what it tried; such a test belongs in tests/integration.
 */
import net from "node:net";

function refuse(what: string): never {
  throw new Error(`tests/unit open no sockets (tried to ${what}): move this test to tests/integration`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const [first] = args;
  // An IPC pipe to a worker is not a network socket.
  if (typeof first === "object" && first !== null && "path" in first) return connect.apply(this, args as never);
  refuse(`connect to ${JSON.stringify(first)}`);
} as typeof connect;
net.Server.prototype.listen = (() => {
  refuse("listen");
}) as typeof net.Server.prototype.listen;
