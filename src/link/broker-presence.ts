/**
 * What the embedded broker knows about a device's connection and no external broker tells Tether:
 * why a session ended, where it came from, and the keepalives of a quiet device.
 *
 * Presence still travels as it does on every broker, as the device's retained `…/presence`
 * (`online`, and `offline` as its last will), through the MQTT bridge. This module notes, just
 * before the broker lets such a message through, what the broker knows about it (a will after a
 * keepalive timeout, a takeover, a revocation, a shutdown; the device's own `offline`; the remote
 * address), and the bridge takes the note when the same message reaches it. Per device the
 * broker delivers in order, so notes are taken first in, first out.
 *
 * A device whose session ends without any offline reaching Tether (an MQTT DISCONNECT without a
 * goodbye, or no last will set) would stay online forever: the broker tells Tether directly then
 * (not on the device's topic, whose retained state stays the device's own).
 */
import type { Socket } from "node:net";
import type { Aedes, Client } from "aedes";
import type { ConnectivityReason, DisconnectReason } from "../core/connectivity/connectivity-reason.js";
import { formatRemoteAddress } from "../core/connectivity/connectivity-reason.js";
import { PRESENCE_ONLINE } from "../protocol/topics.js";

/** What the broker adds to a presence message. */
export interface PresenceNote {
  reason?: ConnectivityReason;
  remoteAddress?: string;
}

/** Read by the bridge for each presence message it receives. */
export interface PresenceNotes {
  take(deviceId: string, online: boolean): PresenceNote | undefined;
}

// A note whose message never reached the bridge (it was reconnecting) must not label a later one.
const NOTE_TTL_MS = 10_000;
const NOTES_PER_DEVICE = 4;
const MAX_DEVICES = 100_000;

export interface BrokerPresence extends PresenceNotes {
  /** The reason the broker is about to close `client` for (set before `client.close()`). */
  closing(client: Client, reason: DisconnectReason): void;
  /** Called from authorizePublish for a device's publish on its own presence topic. */
  noteOwnPresence(client: Client, deviceId: string, payload: string): void;
  /**
   * Where keepalives (at most one per device per interval) and unannounced offlines go, once
   * Tether consumes uplink.
   */
  attach(sink: PresenceSink): void;
}

/** What the broker tells Tether without a message on the device's topic. */
export interface PresenceSink {
  alive(deviceId: string): void;
  offline(deviceId: string, note: PresenceNote): void;
}

export function createBrokerPresence(aedes: Aedes, deviceOf: (client: Client) => string | undefined, aliveEveryMs: number): BrokerPresence {
  const reasons = new WeakMap<Client, DisconnectReason>();
  /** What each live session last said on its presence topic, and whether its will went out. */
  const said = new WeakMap<Client, "online" | "offline" | "will">();
  const notes = new Map<string, Array<{ online: boolean; note: PresenceNote; at: number }>>();
  const aliveAt = new Map<string, number>();
  let sink: PresenceSink | undefined;

  aedes.on("keepaliveTimeout", (client) => reasons.set(client, "keepalive_timeout"));
  aedes.on("clientDisconnect", (client) => {
    const deviceId = deviceOf(client);
    if (!deviceId || said.get(client) === "offline" || said.get(client) === "will") return;
    // aedes sets _disconnected when the session ended with a DISCONNECT packet.
    const clean = (client as Client & { _disconnected?: boolean })._disconnected === true;
    sink?.offline(deviceId, { reason: reasons.get(client) ?? (clean ? "clean" : "connection_lost"), remoteAddress: addressOf(client) });
  });
  aedes.on("ping", (_packet, client) => {
    const deviceId = deviceOf(client);
    if (!deviceId || !sink) return;
    const now = Date.now();
    if (now - (aliveAt.get(deviceId) ?? 0) < aliveEveryMs) return;
    if (aliveAt.size >= MAX_DEVICES) aliveAt.clear();
    aliveAt.set(deviceId, now);
    sink.alive(deviceId);
  });
  // A second connection with a client id already connected takes its session over: aedes closes
  // the first one (publishing its will) inside registerClient, before anything is emitted.
  // registerClient is aedes' own (untyped) method; wrapping it is the one place that sees a takeover in time.
  const internals = aedes as unknown as { clients: Record<string, Client | undefined>; registerClient(client: Client): void };
  const register = internals.registerClient.bind(aedes);
  internals.registerClient = (client: Client) => {
    const previous = internals.clients[client.id];
    if (previous && previous !== client && !reasons.has(previous)) reasons.set(previous, "taken_over");
    register(client);
  };

  function add(deviceId: string, online: boolean, note: PresenceNote) {
    if (notes.size >= MAX_DEVICES && !notes.has(deviceId)) notes.clear();
    const list = notes.get(deviceId) ?? [];
    list.push({ online, note, at: Date.now() });
    if (list.length > NOTES_PER_DEVICE) list.shift();
    notes.set(deviceId, list);
  }

  return {
    closing(client, reason) {
      if (!reasons.has(client)) reasons.set(client, reason);
    },
    noteOwnPresence(client, deviceId, payload) {
      const remoteAddress = addressOf(client);
      // aedes authorizes the will with the client it belongs to, after marking it closed.
      if (client.closed) {
        said.set(client, "will");
        return add(deviceId, false, { reason: reasons.get(client) ?? "connection_lost", remoteAddress });
      }
      const online = payload === PRESENCE_ONLINE;
      said.set(client, online ? "online" : "offline");
      // Any offline the device publishes itself, over a live connection, is its goodbye.
      add(deviceId, online, online ? { remoteAddress } : { reason: "clean", remoteAddress });
    },
    attach(s) {
      sink = s;
    },
    take(deviceId, online) {
      const list = notes.get(deviceId);
      if (!list) return undefined;
      const fresh = Date.now() - NOTE_TTL_MS;
      while (list.length > 0) {
        const first = list.shift()!;
        if (first.at >= fresh && first.online === online) {
          if (list.length === 0) notes.delete(deviceId);
          return first.note;
        }
      }
      notes.delete(deviceId);
      return undefined;
    },
  };
}

function addressOf(client: Client): string {
  const conn = client.conn as Socket;
  return formatRemoteAddress(conn.remoteAddress, conn.remotePort);
}
