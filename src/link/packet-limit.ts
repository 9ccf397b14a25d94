/**
 * A packet-size bound for the embedded broker's MQTT parser.
 *
 * aedes parses each connection with mqtt-packet, which has no size limit: it appends every byte it
 * is sent to one buffer list until the remaining length announced in the fixed header has arrived,
 * so a single 100 MiB PUBLISH costs hundreds of MB before any authorization hook runs. The
 * remaining length is known after at most five bytes, though. This hook checks it right there and
 * fails the parse, which makes aedes destroy the connection: the payload is never buffered.
 *
 * It reaches into aedes' `client._parser` (mqtt-packet's `Parser`): neither offers an option for
 * this (aedes 1.2, mqtt-packet 9). {@link boundPacketSize} throws when those internals are not
 * where it expects them, so an upgrade that moves them fails the broker's start (and the tests)
 * instead of silently dropping the limit.
 */
import type { Client } from "aedes";

/** The parts of mqtt-packet's `Parser` this hook relies on. */
interface ParserInternals {
  packet: { cmd?: string; length: number };
  _parseLength(): boolean;
  _emitError(err: Error): void;
}

/**
 * Bounds the MQTT packets `client` may send to `maxBytes()` bytes of remaining length (variable
 * header + payload), read at each packet so the limit can depend on who the client turned out to
 * be. A larger packet calls `onTooLarge` and closes the connection before its body is read.
 */
export function boundPacketSize(client: Client, maxBytes: () => number, onTooLarge: (length: number, max: number, cmd: string) => void): void {
  const parser = (client as unknown as { _parser?: Partial<ParserInternals> })._parser;
  if (!parser || typeof parser._parseLength !== "function" || typeof parser._emitError !== "function") {
    throw new Error("aedes' MQTT parser is not where Tether expects it (client._parser._parseLength): cannot bound the packet size");
  }
  const parseLength = parser._parseLength;
  parser._parseLength = function (this: ParserInternals) {
    const complete = parseLength.call(this);
    const max = maxBytes();
    if (complete && this.packet.length > max) {
      onTooLarge(this.packet.length, max, this.packet.cmd ?? "unknown");
      // Stops this parse (the state machine checks `error`), and aedes closes the connection on it.
      this._emitError(new Error(`MQTT ${this.packet.cmd ?? "packet"} of ${this.packet.length} bytes exceeds the limit of ${max}`));
      return false;
    }
    return complete;
  };
}
