/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) for single-process deployments and tests.
 *
 * Devices authenticate with mutual TLS only: the client certificate's CN is the device id and must also
 * be the MQTT client id, and its OU must be `devices`. A device may touch only its own topics (see
 * {@link isTopicAllowedForDevice}). Internal services (Tether's own bridge, the admin) present a
 * certificate whose CN is in `serviceCommonNames` and may use any client id and any topic. A
 * provisioning claim certificate (OU `claims`) connects as `claim:{client}` and may use only its
 * provisioning topic pair ({@link isTopicAllowedForClaim}). Revoked certificates are refused at
 * connect, and {@link EmbeddedBroker.disconnectRevoked} cuts their live sessions.
 *
 * What one client can cost is bounded: a packet larger than its limit closes the connection at the
 * packet's fixed header, before the payload is buffered (packet-limit.ts), and the only retained
 * messages a device may leave are its own `online`/`offline` presence (claims: none), so the
 * broker's retained store grows with the number of devices, not with what they send.
 */
import type { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import { createServer, TLSSocket } from "node:tls";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import type { Logger } from "pino";
import type { Counters } from "../core/ports/index.js";
import { normalizeSerial } from "../core/certificates/certificate-name.js";
import type { PresentedCertificate } from "../core/certificates/certificate-gate.js";
import { type BrokerPresence, createBrokerPresence } from "./broker-presence.js";
import { boundPacketSize } from "./packet-limit.js";
import {
  claimClientOf,
  isTopicAllowedForClaim,
  isTopicAllowedForDevice,
  isPresencePayload,
  isValidDeviceId,
  PRESENCE_OFFLINE,
  PRESENCE_OFFLINE_CLEAN,
  PRESENCE_ONLINE,
  presenceTopic,
} from "../protocol/topics.js";

export interface EmbeddedBrokerOptions {
  host: string;
  /** 0 picks an ephemeral port; read the real one from the result. */
  port: number;
  tls: { key: string; cert: string; ca: string };
  log: Logger;
  /** CNs of internal clients that may do everything. Default `["admin", "tether"]`. */
  serviceCommonNames?: string[];
  /** Counts refusals (`tether_mqtt_refused_total{action}`), so abuse shows in metrics, not only logs. */
  counters?: Counters;
  /** Revoked client certificates are refused at connect (see also {@link EmbeddedBroker.disconnectRevoked}). */
  isRevoked?: (serialNumber: string) => boolean;
  /**
   * Devices' and claims' CONNACK waits for this: until Tether consumes uplink, whatever a device
   * publishes (its Hello, telemetry it resends after a restart) would reach no subscriber and be
   * dropped. A device just sees a slow connect (and retries after its connect timeout). Unset: at once.
   */
  admitDevices?: Promise<void>;
  /**
   * Asked before a device or claim certificate is admitted (see core/certificates/certificate-gate.ts):
   * a reason refuses the connection. An error refuses it too: the check fails closed.
   */
  checkCertificate?: (c: PresentedCertificate) => Promise<string | undefined>;
  /**
   * Largest MQTT packet (remaining length: topic, ids and payload) a device, a claim or a client
   * not yet authenticated may send, bytes; a larger one closes its connection before the payload
   * is read (see packet-limit.ts). Unset: no limit.
   */
  maxPacketBytes?: number;
  /** The same for service clients (Tether's bridge publishes downlink up to the API's request size). Unset: no limit. */
  maxServicePacketBytes?: number;
  /** A device's keepalives reach {@link BrokerPresence.onAlive} at most this often, ms. @default 60000 */
  livenessIntervalMs?: number;
}

export interface EmbeddedBroker {
  port: number;
  aedes: Aedes;
  /** Why sessions end, where they come from, and keepalives: for the bridge and the uplink intake. */
  presence: BrokerPresence;
  /** Drops a client's connection (its last will is published), e.g. after its certificate is revoked. */
  disconnectClient(id: string): void;
  /**
   * Closes every live session whose certificate is now revoked; returns how many. A CRL is only
   * read at the TLS handshake, so a revocation must push this rather than wait for a reconnect.
   */
  disconnectRevoked(isRevoked: (serialNumber: string) => boolean): number;
  /** Stops listening and destroys every open connection. */
  close(): Promise<void>;
}

type Identity = ({ kind: "device"; deviceId: string } | { kind: "service"; commonName: string } | { kind: "claim"; templateId: string; clientId: string }) & {
  serialNumber: string;
};

const DEVICES_OU = "devices";
const CLAIMS_OU = "claims";
const NOT_AUTHORIZED = 5; // CONNACK return code; aedes' AuthErrorCode is a const enum

/** Starts aedes behind a mutual-TLS listener and resolves once it is listening. */
export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.log;
  const services = new Set(opts.serviceCommonNames ?? ["admin", "tether"]);
  const identities = new WeakMap<Client, Identity>();

  const refuseConnect = (client: Client, reason: string, done: (err: AuthenticateError, ok: null) => void) => {
    opts.counters?.inc("tether_mqtt_refused_total", { action: "connect" });
    log.warn({ clientId: client.id, reason }, "mqtt connection refused");
    done(Object.assign(new Error(reason), { returnCode: NOT_AUTHORIZED }) as AuthenticateError, null);
  };

  const admit = (done: (err: null, ok: true) => void) => {
    if (opts.admitDevices) void opts.admitDevices.then(() => done(null, true));
    else done(null, true);
  };

  /** Admits after the certificate gate (if any) agrees. */
  const checkThenAdmit = (client: Client, c: PresentedCertificate, done: (err: AuthenticateError | null, ok: boolean | null) => void) => {
    if (!opts.checkCertificate) return admit(done);
    opts.checkCertificate(c).then(
      (reason) => (reason ? refuseConnect(client, reason, done) : admit(done)),
      (err: unknown) => {
        log.error({ err, clientId: client.id }, "mqtt certificate check failed");
        refuseConnect(client, "certificate check failed", done);
      },
    );
  };

  const aedes = await Aedes.createBroker({
    maxClientsIdLength: 128,
    authenticate(client, _username, _password, done) {
      const conn = client.conn;
      if (!(conn instanceof TLSSocket) || !conn.authorized) {
        return refuseConnect(client, "no verified client certificate", done);
      }
      const peer = conn.getPeerCertificate();
      const subject = peer.subject ?? {};
      const commonName = firstValue(subject.CN);
      const units = ([] as string[]).concat(subject.OU ?? []);
      const serialNumber = normalizeSerial(peer.serialNumber ?? "");
      const notBefore = new Date(peer.valid_from);
      if (!commonName) return refuseConnect(client, "client certificate has no CN", done);
      if (opts.isRevoked?.(serialNumber)) return refuseConnect(client, `client certificate ${serialNumber} (CN ${commonName}) is revoked`, done);
      const will = (client as Client & { _will?: RetainCheck | null })._will;
      if (units.includes(CLAIMS_OU)) {
        // A claim certificate may only use its provisioning topic pair (see topics.ts).
        if (!isValidDeviceId(commonName)) return refuseConnect(client, `claim certificate CN ${commonName} is not a template id`, done);
        const claimClient = claimClientOf(client.id);
        if (!claimClient)
          return refuseConnect(client, "a claim certificate's client id must be claim:{client}, {client} 1-64 letters, digits, '.', '_' or '-'", done);
        if (will) return refuseConnect(client, "a claim certificate may not set a will", done);
        identities.set(client, { kind: "claim", templateId: commonName, clientId: claimClient, serialNumber });
        return checkThenAdmit(client, { kind: "claim", commonName, serialNumber, notBefore }, done);
      }

      if (units.includes(DEVICES_OU)) {
        if (!isValidDeviceId(commonName)) return refuseConnect(client, `invalid device id ${commonName}`, done);
        if (client.id !== commonName) return refuseConnect(client, `client id must equal certificate CN ${commonName}`, done);
        // The will is published on the device's behalf later, so check it now like any publish.
        if (will && !isTopicAllowedForDevice(commonName, will.topic, "publish")) {
          return refuseConnect(client, `will topic not allowed: ${will.topic}`, done);
        }
        const willRefusal = will && retainRefusal(commonName, will);
        if (willRefusal) return refuseConnect(client, `will refused: ${willRefusal}`, done);
        identities.set(client, { kind: "device", deviceId: commonName, serialNumber });
        return checkThenAdmit(client, { kind: "device", commonName, serialNumber, notBefore }, done);
      } else if (services.has(commonName)) {
        identities.set(client, { kind: "service", commonName, serialNumber });
      } else {
        return refuseConnect(client, `certificate CN ${commonName} is neither a device nor a service`, done);
      }
      done(null, true);
    },
    authorizePublish(client, packet, done) {
      if (!client) return done(null); // broker-internal (persisted wills, already checked at connect)
      const identity = identities.get(client);
      if (identity?.kind === "service") return done(null);
      // A retained message is kept by the broker for every later subscriber, per topic: only a
      // device's own presence, with a presence payload, may be one (claims have no presence).
      if (identity && packet.retain) {
        const refusal = identity.kind === "device" ? retainRefusal(identity.deviceId, packet) : "a claim may not publish retained messages";
        if (refusal) {
          opts.counters?.inc("tether_mqtt_refused_total", { action: "retain" });
          log.warn({ clientId: client.id, topic: packet.topic }, "mqtt retained publish refused");
          return done(new Error(refusal)); // closes the connection, like any refused PUBLISH in MQTT 3.1.1
        }
      }
      if (identity?.kind === "device" && isTopicAllowedForDevice(identity.deviceId, packet.topic, "publish")) {
        const payload = packet.payload.toString();
        if (packet.topic === presenceTopic(identity.deviceId) && isPresencePayload(payload)) presence.noteOwnPresence(client, identity.deviceId, payload);
        return done(null);
      }
      if (identity?.kind === "claim" && isTopicAllowedForClaim(identity.templateId, identity.clientId, packet.topic, "publish")) {
        return done(null);
      }
      opts.counters?.inc("tether_mqtt_refused_total", { action: "publish" });
      log.warn({ clientId: client.id, topic: packet.topic }, "mqtt publish refused");
      // MQTT 3.1.1 cannot reject a single PUBLISH: the error closes the connection.
      done(new Error(`publish to ${packet.topic} not allowed`));
    },
    authorizeSubscribe(client, subscription, done) {
      const identity = identities.get(client);
      if (
        identity?.kind === "service" ||
        (identity?.kind === "device" && isTopicAllowedForDevice(identity.deviceId, subscription.topic, "subscribe")) ||
        (identity?.kind === "claim" && isTopicAllowedForClaim(identity.templateId, identity.clientId, subscription.topic, "subscribe"))
      ) {
        return done(null, subscription);
      }
      opts.counters?.inc("tether_mqtt_refused_total", { action: "subscribe" });
      log.warn({ clientId: client.id, topic: subscription.topic }, "mqtt subscription refused");
      done(null, null); // SUBACK 0x80 for this filter; an Error would drop the connection
    },
  });

  const presence = createBrokerPresence(
    aedes,
    (client) => {
      const identity = identities.get(client);
      return identity?.kind === "device" ? identity.deviceId : undefined;
    },
    opts.livenessIntervalMs ?? 60_000,
  );

  aedes.on("clientReady", (client) => {
    const identity = identities.get(client);
    // A revocation that landed between authenticate and registration would otherwise miss this session.
    if (identity && opts.isRevoked?.(identity.serialNumber)) {
      presence.closing(client, "certificate_revoked");
      return client.close();
    }
    log.debug({ clientId: client.id, ...identity }, "mqtt client connected");
  });
  aedes.on("clientDisconnect", (client) => log.debug({ clientId: client.id }, "mqtt client disconnected"));
  aedes.on("clientError", (client, err) => log.debug({ clientId: client.id, err: err.message }, "mqtt client error"));
  aedes.on("connectionError", (client, err) => log.debug({ clientId: client.id, err: err.message }, "mqtt connection error"));
  // aedes emits "error" (e.g. from its will sweeper) without typing it; unhandled, it would crash the process.
  (aedes as EventEmitter).on("error", (err: Error) => log.error({ err }, "mqtt broker error"));

  const server = createServer({ key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: true, rejectUnauthorized: true }, (socket) => {
    const client = aedes.handle(socket);
    boundPacketSize(
      client,
      () => (identities.get(client)?.kind === "service" ? opts.maxServicePacketBytes : opts.maxPacketBytes) ?? Infinity,
      (length, max, cmd) => {
        opts.counters?.inc("tether_mqtt_refused_total", { action: "packet_too_large" });
        log.warn({ clientId: client.id, remoteAddress: socket.remoteAddress, cmd, length, max }, "mqtt packet too large; connection closed");
      },
    );
  });
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    socket.setNoDelay(true); // see no-delay.ts: commands must not wait for delayed ACKs
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", (err) => log.warn({ err: err.message }, "mqtt TLS handshake failed"));

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : opts.port;
  log.info({ host: opts.host, port }, "embedded MQTT broker listening");

  let closing: Promise<void> | undefined;
  return {
    port,
    aedes,
    presence,
    disconnectClient(id: string) {
      const client = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[id];
      if (!client) return;
      log.info({ clientId: id }, "disconnecting mqtt client");
      client.close();
    },
    disconnectRevoked(isRevoked) {
      const clients = (aedes as unknown as { clients: Record<string, Client | undefined> }).clients;
      let cut = 0;
      for (const client of Object.values(clients)) {
        const identity = client && identities.get(client);
        if (!client || !identity || !isRevoked(identity.serialNumber)) continue;
        log.warn({ clientId: client.id, serialNumber: identity.serialNumber }, "mqtt session cut: certificate revoked");
        opts.counters?.inc("tether_mqtt_revoked_sessions_cut_total");
        presence.closing(client, "certificate_revoked");
        client.close();
        cut++;
      }
      return cut;
    },
    close() {
      closing ??= (async () => {
        for (const client of Object.values((aedes as unknown as { clients: Record<string, Client | undefined> }).clients)) {
          if (client) presence.closing(client, "server_shutdown");
        }
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await Promise.all([serverClosed, new Promise<void>((resolve) => aedes.close(() => resolve()))]);
        log.info("embedded MQTT broker stopped");
      })();
      return closing;
    },
  };
}

type RetainCheck = { topic: string; payload: Buffer | string; retain?: boolean };

/** Why a device's (retained) message may not be retained, or undefined when it may: only its presence, `online`/`offline`. */
function retainRefusal(deviceId: string, m: RetainCheck): string | undefined {
  if (!m.retain) return undefined;
  if (m.topic !== presenceTopic(deviceId)) return `a device may retain only its presence topic, not ${m.topic}`;
  const payload = m.payload.toString();
  if (!isPresencePayload(payload)) return `a retained presence must be "${PRESENCE_ONLINE}", "${PRESENCE_OFFLINE}" or "${PRESENCE_OFFLINE_CLEAN}"`;
  return undefined;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
