import { timestampDate } from "@bufbuild/protobuf/wkt";
import { DeviceGatewayService } from "../../gen/tether/device/v1/gateway_service_pb.js";
import { authInterceptor } from "../api/auth.js";
import { errorMappingInterceptor } from "../api/errors.js";
import { observeInterceptor } from "../api/observe.js";
import { startApiServer } from "../api/server.js";
import { staticFiles } from "../api/static-files.js";
import { streamLimitInterceptor } from "../api/stream-limit.js";
import type { EmbeddedBroker } from "../link/embedded-broker.js";
import { crlRoute } from "../api/crl-route.js";
import { mcpRoute } from "./mcp.js";
import { firmwareDownloadRoute } from "../api/firmware-download-route.js";
import type { Firmware } from "./firmware.js";
import type { Access } from "./access.js";
import type { Audit } from "./audit.js";
import type { CertificateChecks } from "./certificates.js";
import type { Infrastructure } from "./infrastructure.js";
import type { Ops } from "./ops.js";
import { type ServiceEntry, serviceRoutes } from "./services.js";
import type { Tasks } from "./tasks.js";

/** The API's logger and per-principal stream cap, made before the metrics that count its streams. */
export function createApiGuards(x: Infrastructure) {
  const apiLog = x.log.child({ component: "api" });
  const streamLimit = streamLimitInterceptor({ maxPerPrincipal: x.config.api.maxStreamsPerPrincipal, counters: x.counters, log: apiLog });
  return { apiLog, streamLimit };
}

/**
 * The API server (Connect, gRPC, gRPC-Web; the CRL and the console beside it), then the watches
 * that cut sessions of deleted devices and revoked certificates, which need the server.
 */
export async function startApi(
  x: Infrastructure,
  p: {
    guards: ReturnType<typeof createApiGuards>;
    services: ServiceEntry[];
    ops: Ops;
    access: Access;
    checks: CertificateChecks;
    broker?: EmbeddedBroker;
    gateway: Tasks["gateway"];
    audit: Audit;
    firmware: Firmware;
  },
) {
  const { config, amqp, coreLog } = x;
  const { apiLog, streamLimit } = p.guards;
  const { health, metrics } = p.ops;
  const { auth, sessions, accessFor } = p.access;
  const { isRevoked, checkCertificate, crl, certificateGate, revoked } = p.checks;
  const { broker, gateway } = p;
  const routes = serviceRoutes(p.services, health);
  const interceptors = [
    observeInterceptor({ log: apiLog, observer: metrics, slowCallMs: config.ops.slowCallMs }),
    // Outside the error mapping (it records the code the client gets) and outside auth (it records auth's refusals).
    p.audit.interceptor,
    errorMappingInterceptor(apiLog),
    authInterceptor({
      authenticate: (b) => auth.authenticate(b),
      watchSession: sessions.watch,
      accessFor,
      deviceServices: [DeviceGatewayService.typeName],
      isRevoked,
      checkCertificate,
      log: apiLog,
    }),
    streamLimit.interceptor,
  ];
  const api = await startApiServer({
    host: config.api.host,
    port: config.api.port,
    tls: x.tls,
    routes,
    interceptors,
    readMaxBytes: config.api.readMaxBytes,
    trustedProxies: config.api.trustedProxies,
    maxConcurrentStreams: config.api.maxConcurrentStreams,
    hstsMaxAgeS: config.api.hstsMaxAgeS,
    jsonUnknownFields: config.api.jsonUnknownFields,
    log: apiLog,
    // The CRL before the console: the console's routes fall back to index.html for any path.
    http: [
      crlRoute(() => crl.pem),
      mcpRoute({
        routes,
        interceptors,
        authenticate: (b) => auth.authenticate(b),
        ratePerMin: config.mcp.ratePerMin,
        readMaxBytes: config.api.readMaxBytes,
        log: apiLog,
      }),
      firmwareDownloadRoute({
        open: p.firmware.openForDevice,
        read: p.firmware.firmware.read,
        isRevoked,
        checkCertificate,
        log: apiLog,
      }),
      staticFiles({ root: config.consoleDir, missingHint: "The web console is not built. Run `npm run build:console` (npm start builds it when missing).\n" }),
    ],
  });
  // A deleted device's sessions end on every replica, whatever certificate they use (one signed
  // outside Tether cannot be revoked by serial): the gate refuses it from now on.
  const unobserveDeletions = x.feeds.deviceFeed.subscribe((d) => {
    if (!d.deleteTime) return;
    const id = d.name.slice("devices/".length);
    certificateGate.deviceDeleted(id, timestampDate(d.deleteTime));
    broker?.disconnectClient(id);
    gateway.wake(id);
  });
  x.life.add({ name: "device deletions watch", stop: () => unobserveDeletions() });
  // Every revocation, from this replica or (via the feed) another: refuse it from now on, and cut
  // the sessions already open with it — the broker's within the same tick.
  const unobserveRevocations = x.feeds.revocations.subscribe((r) => {
    revoked.add(r.serialNumber);
    broker?.disconnectRevoked(isRevoked);
    api.disconnectRevoked(isRevoked);
    // Revocations made on other replicas too: this replica's /crl.pem must list them (a local one
    // was already written; refreshing again costs one query and one signature).
    if (amqp) void crl.refresh().catch((err: unknown) => coreLog.error({ err }, "CRL refresh failed"));
  });
  x.life.add({ name: "revocations watch", stop: () => unobserveRevocations() });
  x.life.add({
    name: "api server",
    // In-flight calls get the grace period; the bound leaves room beyond it for the ports to close.
    timeoutMs: config.shutdownGraceMs + 5_000,
    stop: async () => {
      health.shutdown();
      await api.close(config.shutdownGraceMs);
    },
  });
  // Stopped before the API closes: parked long polls answer (empty) at once instead of holding
  // the shutdown for the grace period.
  x.life.add({ name: "device gateway", stop: () => gateway.close() });
  return api;
}
