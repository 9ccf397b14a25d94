import path from "node:path";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_tether_device_v1_downlink } from "../gen/tether/device/v1/downlink_pb.js";
import { file_tether_device_v1_uplink } from "../gen/tether/device/v1/uplink_pb.js";
import { DeviceService, file_tether_v1_device_service } from "../gen/tether/v1/device_service_pb.js";
import { authInterceptor } from "./api/auth.js";
import { deviceHandler } from "./api/device-handler.js";
import { errorMappingInterceptor } from "./api/errors.js";
import { createHealthService } from "./api/health.js";
import { createReflectionService } from "./api/reflection.js";
import { startApiServer } from "./api/server.js";
import type { TetherConfig } from "./config.js";
import { type Clock, systemClock } from "./core/clock.js";
import { createDeviceService } from "./core/devices/device-service.js";
import { startEmbeddedBroker } from "./link/embedded-broker.js";
import type { Logger } from "./log.js";
import { ensureDevPki } from "./pki/dev-pki.js";
import { openDatabase } from "./store/database.js";
import { createDeviceStore } from "./store/device-store.js";

/** The services listed by server reflection. */
const PUBLIC_SERVICES = [DeviceService.typeName, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"];

export interface App {
  /** The bound API port (useful when configured as 0). */
  apiPort: number;
  /** The bound embedded MQTT port. */
  mqttPort: number;
  /** Where the PKI lives; `ca.crt`, `admin.crt`/`admin.key` connect clients. */
  certsDir: string;
  /** Graceful stop: health goes NOT_SERVING, in-flight calls finish, ports close, the database flushes. */
  stop(): Promise<void>;
}

/**
 * The composition root: config → adapters → core services → API and broker, started in
 * dependency order and stopped in reverse. Tests call it with ephemeral ports and a temp dir.
 */
export async function startApp(config: TetherConfig, log: Logger, clock: Clock = systemClock): Promise<App> {
  const pki = await ensureDevPki(config.certsDir, log.child({ component: "pki" }));
  const db = await openDatabase({
    url: config.database.url,
    dataDir: path.join(config.dataDir, "pg"),
    maxConnections: config.database.poolSize,
    log: log.child({ component: "db" }),
  });
  const stack: Array<() => Promise<void>> = [() => db.close()];
  try {
    const devices = createDeviceService({ devices: createDeviceStore(db.sql), clock });
    const health = createHealthService();
    const reflection = createReflectionService(
      [file_tether_v1_device_service, file_tether_device_v1_downlink, file_tether_device_v1_uplink],
      PUBLIC_SERVICES,
    );
    const routes = (router: ConnectRouter) => {
      router.service(DeviceService, deviceHandler(devices));
      health.routes(router);
      reflection(router);
    };
    const apiLog = log.child({ component: "api" });
    const api = await startApiServer({
      host: config.api.host,
      port: config.api.port,
      tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
      routes,
      interceptors: [errorMappingInterceptor(apiLog), authInterceptor()],
      readMaxBytes: config.api.readMaxBytes,
      log: apiLog,
    });
    stack.push(async () => {
      health.shutdown();
      await api.close(config.shutdownGraceMs);
    });
    const broker = await startEmbeddedBroker({
      host: config.mqtt.host,
      port: config.mqtt.port,
      tls: { key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.caPem },
      log: log.child({ component: "mqtt" }),
    });
    stack.push(() => broker.close());
    log.info({ api: `https://${config.api.host}:${api.port}`, mqtt: `mqtts://${config.mqtt.host}:${broker.port}`, certs: config.certsDir, database: db.embedded ? "embedded (PGlite)" : "postgresql" }, "tether ready");

    let stopping: Promise<void> | undefined;
    return {
      apiPort: api.port,
      mqttPort: broker.port,
      certsDir: config.certsDir,
      stop: () => (stopping ??= unwind(stack, log)),
    };
  } catch (err) {
    await unwind(stack, log);
    throw err;
  }
}

/** Stops components in reverse start order; one failure does not keep the others running. */
async function unwind(stack: Array<() => Promise<void>>, log: Logger): Promise<void> {
  for (const stop of stack.reverse()) {
    try {
      await stop();
    } catch (err) {
      log.error({ err }, "error during shutdown");
    }
  }
}
