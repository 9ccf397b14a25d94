import { createConnectivityService } from "../core/connectivity/connectivity-service.js";
import type { UplinkIntake } from "../core/ports/uplink-intake.js";
import type { EmbeddedBroker } from "../link/embedded-broker.js";
import { createConnectivityStore } from "../store/connectivity-store.js";
import type { Infrastructure } from "./infrastructure.js";

const RETENTION_EVERY_MS = 3_600_000;

/**
 * Presence as a resource: connectivity events (ListConnectivityEvents, retention), the silence
 * sweep, and, with the embedded broker, the disconnects Tether causes by starting and stopping
 * (the broker lives and dies with it), the keepalives only that broker can see, and the sessions
 * that ended without an offline reaching Tether (a DISCONNECT without goodbye, no last will).
 *
 * `closeSlot` is a stop slot reserved before the uplink intake's: devices are marked offline
 * once nothing can bring them back online (the device link and the intake have stopped), before
 * the broker and the database go.
 */
export function createPresence(x: Infrastructure, closeSlot: (stop: () => Promise<void> | void) => void) {
  const { config } = x;
  const connectivity = createConnectivityService({
    devices: x.stores.devices,
    events: createConnectivityStore(x.db.sql),
    deviceFeed: x.feeds.deviceFeed,
    clock: x.clock,
    log: x.coreLog,
    silentAfterMs: config.presence.silentAfterS * 1000,
    retentionMs: config.presence.retentionDays * 86_400_000,
  });
  const fail = (what: string) => (err: unknown) => x.coreLog.error({ err }, what);

  return {
    connectivity,
    /**
     * Starts the sweeps; with the embedded broker, first marks offline whatever a previous run
     * left online (no broker holds those sessions any more), and forwards keepalives to `intake`.
     */
    async start(deps: { broker?: EmbeddedBroker; intake: UplinkIntake }) {
      const { broker, intake } = deps;
      if (broker) {
        await connectivity.allOffline("server_shutdown");
        broker.presence.attach({
          alive: (deviceId) => void intake.submit({ kind: "alive", deviceId }).catch(fail("keepalive not taken")),
          offline: (deviceId, note) => void intake.submit({ kind: "presence", deviceId, online: false, ...note }).catch(fail("offline not taken")),
        });
        closeSlot(() => {
          // The broker's own closes from here on are the shutdown's, recorded just below.
          broker.presence.attach({ alive() {}, offline() {} });
          return connectivity.allOffline("server_shutdown").then(() => undefined, fail("could not mark devices offline at shutdown"));
        });
      } else {
        closeSlot(() => {});
      }
      const silence = setInterval(() => void connectivity.sweepSilence().catch(fail("silence sweep failed")), config.presence.silentCheckS * 1000);
      const expire = () => void connectivity.expire().catch(fail("connectivity event retention failed"));
      const retention = setInterval(expire, RETENTION_EVERY_MS);
      expire();
      x.life.add({
        name: "presence sweeps",
        stop: () => {
          clearInterval(silence);
          clearInterval(retention);
        },
      });
    },
  };
}
