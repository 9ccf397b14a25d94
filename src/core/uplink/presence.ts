import type { Hello } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { PresenceChange } from "../connectivity/connectivity-reason.js";
import type { Drop, UplinkDeps } from "./uplink-deps.js";

/** A device coming and going: the broker's connect/disconnect, and the device's own Hello. */
export function createPresence(d: Pick<UplinkDeps, "devices" | "deviceFeed" | "dispatcher" | "clock">, drop: Drop) {
  return {
    /** A connect or disconnect seen by the broker (with its reason, where the transport knows it). */
    async presence(deviceId: string, change: PresenceChange): Promise<void> {
      const stored = await d.devices.setPresence(deviceId, change, d.clock.now());
      if (!stored) return drop(deviceId, "unknown_device");
      d.deviceFeed.publish(stored.device);
      if (change.online) await d.dispatcher.onHello(deviceId);
    },

    /**
     * The device (re)connected: it gets its desired state, and its tasks when it wants them. The
     * firmware version it runs is the device's word: stored (and announced on the device feed)
     * when it differs from Tether's, even over one set through the API. An empty one says nothing.
     */
    async hello(deviceId: string, hello: Hello): Promise<void> {
      const known = await d.devices.setPresence(deviceId, { online: true }, d.clock.now(), { uplink: true });
      if (!known) return drop(deviceId, "unknown_device");
      const changed = hello.firmwareVersion !== "" && hello.firmwareVersion !== known.device.firmwareVersion;
      const updated = changed ? await d.devices.setFirmwareVersion(deviceId, hello.firmwareVersion) : undefined;
      // A Hello from a device Tether had as offline (its presence not heard, e.g. no `online`
      // publish) brings it online: that is news too.
      if (updated) d.deviceFeed.publish(updated.device);
      else if (known.changed) d.deviceFeed.publish(known.device);
      if (hello.wantPendingTasks) await d.dispatcher.onHello(deviceId);
      else await d.dispatcher.sendDesiredState(deviceId);
    },
  };
}
