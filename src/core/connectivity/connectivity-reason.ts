import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type ConnectivityEvent,
  ConnectivityEvent_Reason as Reason,
  ConnectivityEvent_Type as Type,
  ConnectivityEventSchema,
} from "../../../gen/tether/v1/connectivity_pb.js";
import { deviceName } from "../devices/device-name.js";

/**
 * Why a device came or went, as stored (`connectivity_events.reason`). The meaning of each, and
 * which broker can tell it apart, is documented on `tether.v1.ConnectivityEvent.Reason`.
 */
export type ConnectReason = "connected" | "broker_restored";
export type DisconnectReason = "clean" | "keepalive_timeout" | "connection_lost" | "taken_over" | "certificate_revoked" | "server_shutdown" | "broker_lost";
export type ConnectivityReason = ConnectReason | DisconnectReason;

/** A presence change as a transport reports it; what it cannot tell stays unset. */
export interface PresenceChange {
  online: boolean;
  /** Unset: `connected` for a connect, `connection_lost` for a disconnect (a last will says no more). */
  reason?: ConnectivityReason;
  /** Where the device connected from, where the transport knows it. */
  remoteAddress?: string;
}

/** One recorded connect or disconnect. */
export interface ConnectivityRecord {
  id: string;
  deviceId: string;
  connected: boolean;
  reason: string;
  remoteAddress: string;
  time: Date;
}

const REASONS: Record<ConnectivityReason, Reason> = {
  connected: Reason.CONNECTED,
  broker_restored: Reason.BROKER_RESTORED,
  clean: Reason.CLEAN,
  keepalive_timeout: Reason.KEEPALIVE_TIMEOUT,
  connection_lost: Reason.CONNECTION_LOST,
  taken_over: Reason.TAKEN_OVER,
  certificate_revoked: Reason.CERTIFICATE_REVOKED,
  server_shutdown: Reason.SERVER_SHUTDOWN,
  broker_lost: Reason.BROKER_LOST,
};

/** Whether `s` names a reason (read from a queue header: anything else is dropped). */
export function isConnectivityReason(s: string): s is ConnectivityReason {
  return Object.hasOwn(REASONS, s);
}

/** The stored reason of a change: what the transport said, or the default for its direction. */
export function reasonOf(change: PresenceChange): ConnectivityReason {
  return change.reason ?? (change.online ? "connected" : "connection_lost");
}

/** Most bytes of a remote address kept (`[v6]:port` fits in 47). */
export const REMOTE_ADDRESS_MAX = 64;

/** The API's view of a record. */
export function toConnectivityEvent(r: ConnectivityRecord): ConnectivityEvent {
  return create(ConnectivityEventSchema, {
    name: `${deviceName(r.deviceId)}/connectivityEvents/${r.id}`,
    type: r.connected ? Type.CONNECTED : Type.DISCONNECTED,
    reason: REASONS[r.reason as ConnectivityReason] ?? Reason.UNSPECIFIED,
    remoteAddress: r.remoteAddress.slice(0, REMOTE_ADDRESS_MAX),
    eventTime: timestampFromDate(r.time),
  });
}

/** `host:port`, `[v6]:port`, or "" when unknown. */
export function formatRemoteAddress(host: string | undefined, port: number | undefined): string {
  if (!host) return "";
  const h = host.startsWith("::ffff:") ? host.slice(7) : host;
  const shown = h.includes(":") ? `[${h}]` : h;
  return (port ? `${shown}:${port}` : shown).slice(0, REMOTE_ADDRESS_MAX);
}
