import { DeviceFailure } from "../../src/device/errors.js";
import type { TetherDevice } from "../../src/device/tether-device.js";
import { ensureDevPki, issueDeviceCertificate } from "../../src/pki/dev-pki.js";
import { LedSim } from "../../src/core/products/led-sim.js";
import { connectSimulator } from "../../src/sim/simulator.js";
import type { TestStack } from "./stack.js";

/** Simulated LEDs on the stack's broker; the devices in `failing` fail every command they get. */
export interface LedFleet {
  devices: Map<string, TetherDevice>;
  /** Command executions per device (a device executing one task twice counts twice). */
  executions(deviceId: string): number;
  totalExecutions(): number;
  stop(): Promise<void>;
}

export async function startLedFleet(s: TestStack, ids: string[], failing: ReadonlySet<string> = new Set(), concurrency = 50): Promise<LedFleet> {
  const pki = await ensureDevPki(`${s.dir}/certs`);
  const devices = new Map<string, TetherDevice>();
  const stop = async () => void (await Promise.allSettled([...devices.values()].map((d) => d.close())));
  try {
    for (let i = 0; i < ids.length; i += concurrency) {
      await Promise.all(
        ids.slice(i, i + concurrency).map(async (deviceId) => {
          const cert = await issueDeviceCertificate(pki.ca, deviceId);
          const device = await connectSimulator(
            new LedSim(),
            { url: `mqtts://127.0.0.1:${s.app.mqttPort}`, deviceId, cert: cert.certPem, key: cert.keyPem, ca: pki.caPem, reconnectPeriodMs: 200 },
            (handler) => (command, ctx) => {
              if (failing.has(deviceId)) throw new DeviceFailure("SIMULATED_FAULT", "this device always fails");
              return handler(command, ctx);
            },
          );
          devices.set(deviceId, device.device);
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const count = (d: TetherDevice | undefined) => (d ? [...d.executions.values()].reduce((a, b) => a + b, 0) : 0);
  return {
    devices,
    executions: (id) => count(devices.get(id)),
    totalExecutions: () => [...devices.values()].reduce((a, d) => a + count(d), 0),
    stop,
  };
}
