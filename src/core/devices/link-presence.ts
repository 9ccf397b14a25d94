import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Clock } from "../clock.js";
import type { CoreLogger } from "../log.js";
import type { ChangeFeed } from "../ports/index.js";
import type { DeviceRepository } from "../ports/device-repository.js";

/** The broker connection as presence needs it (the MQTT bridge to an external broker). */
export interface PresenceLink {
  connected(): boolean;
  onLinkChange(handler: (up: boolean) => void): void;
  /** Makes the broker re-send every device's retained presence. */
  resyncPresence(): Promise<void>;
}

export interface LinkPresenceDeps {
  link: PresenceLink;
  devices: Pick<DeviceRepository, "setAllOffline">;
  /** Device changes (WatchDevices, event rules). */
  deviceFeed: ChangeFeed<Device>;
  /** Shared by every replica: "a replica lost the broker and marked devices offline". */
  resyncFeed: ChangeFeed<string>;
  /** This replica's name in `resyncFeed` (its own requests are not for itself). */
  replica: string;
  clock: Clock;
  log: CoreLogger;
}

/**
 * Presence while the broker is unreachable. Devices' presence is what the broker tells Tether
 * (retained `online`, the last will `offline`); cut off from the broker, Tether hears nothing, and
 * reporting the last word as current would claim devices it cannot reach are online. So when the
 * bridge loses an established connection (after the keepalive), every online device is marked
 * offline; when it is back, the bridge subscribes to presence again, the broker re-sends the
 * retained presence, and the devices that are really there come back online and get their queued
 * tasks.
 *
 * With several replicas, one replica's partition does not make devices unreachable for the
 * others: the replica that marked them offline asks the others through `resyncFeed`, and each one
 * still connected re-reads the retained presence, which puts the reachable devices back online.
 */
export function startLinkPresence(d: LinkPresenceDeps): () => void {
  const { link, log } = d;
  let marking: Promise<void> = Promise.resolve();
  link.onLinkChange((up) => {
    if (up) {
      // After the devices were marked offline: a kept session is not re-subscribed, so the
      // retained presence has to be asked for.
      marking = marking.then(() => link.resyncPresence().catch((err: unknown) => log.warn({ err }, "presence resync failed")));
      return;
    }
    marking = marking.then(async () => {
      try {
        const changed = await d.devices.setAllOffline(d.clock.now(), "broker_lost");
        for (const device of changed) d.deviceFeed.publish(device);
        log.warn({ devices: changed.length }, "broker unreachable: devices marked offline until their presence is heard again");
        if (changed.length > 0) d.resyncFeed.publish(d.replica);
      } catch (err) {
        // The database may be gone too; presence then stays as it was, and heals on reconnect.
        log.error({ err }, "could not mark devices offline after losing the broker");
      }
    });
  });
  return d.resyncFeed.subscribe((from) => {
    if (from === d.replica || !link.connected()) return;
    log.info({ from }, "another replica lost the broker: re-reading retained presence");
    link.resyncPresence().catch((err: unknown) => log.warn({ err }, "presence resync failed"));
  });
}
