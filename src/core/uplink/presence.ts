import type { Hello } from "../../../gen/tether/device/v1/uplink_pb.js";
import type { Drop, UplinkDeps } from "./uplink-deps.js";

/** A device coming and going: the broker's connect/disconnect, and the device's own Hello. */
export function createPresence(d: Pick<UplinkDeps, "devices" | "deviceFeed" | "dispatcher" | "clock">, drop: Drop) {
  return {
    /** A connect (true) or disconnect (false) seen by the broker. */
    async presence(deviceId: string, online: boolean): Promise<void> {
      const known = await d.devices.setPresence(deviceId, online, d.clock.now());
      if (!known) return drop(deviceId, "unknown_device");
      const stored = await d.devices.get(deviceId);
      if (stored) d.deviceFeed.publish(stored.device);
      if (online) await d.dispatcher.onHello(deviceId);
    },

    /**
     * The device (re)connected: it gets its desired state, and its tasks when it wants them. The
     * firmware version it runs is the device's word: stored (and announced on the device feed)
     * when it differs from Tether's, even over one set through the API. An empty one says nothing.
     */
    async hello(deviceId: string, hello: Hello): Promise<void> {
      const known = await d.devices.setPresence(deviceId, true, d.clock.now());
      if (!known) return drop(deviceId, "unknown_device");
      if (hello.firmwareVersion !== "" && hello.firmwareVersion !== known.firmwareVersion) {
        const changed = await d.devices.setFirmwareVersion(deviceId, hello.firmwareVersion);
        if (changed) d.deviceFeed.publish(changed.device);
      }
      if (hello.wantPendingTasks) await d.dispatcher.onHello(deviceId);
      else await d.dispatcher.sendDesiredState(deviceId);
    },
  };
}
