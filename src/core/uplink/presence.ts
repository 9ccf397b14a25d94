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

    /** The device (re)connected: it gets its desired state, and its tasks when it wants them. */
    async hello(deviceId: string, hello: Hello): Promise<void> {
      if (!(await d.devices.setPresence(deviceId, true, d.clock.now()))) return drop(deviceId, "unknown_device");
      if (hello.wantPendingTasks) await d.dispatcher.onHello(deviceId);
      else await d.dispatcher.sendDesiredState(deviceId);
    },
  };
}
