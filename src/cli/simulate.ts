import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { createLogger } from "../log.js";
import { ensureDevPki, issueDeviceCertificate } from "../pki/dev-pki.js";
import { type Fleet, startFleet } from "../sim/fleet.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { connectClient } from "./client.js";

export const SIMULATE_USAGE = `tether simulate --kind led|coffee [--count N] [--prefix ID] [--offline-ratio 0.1] [--fail-ratio 0.05]
                [--brew-ms 3000] [--telemetry-rate 1] [--mqtt mqtts://localhost:8883]
  Registers N devices (if missing), issues them certificates from the dev CA in certs/, connects them over
  MQTT and runs them until Ctrl-C, printing executions and duplicates every 5 s. With --telemetry-rate R,
  each device also publishes R telemetry samples per second (temperature, power or water level, and the
  ephemeral signal_strength).`;

/** `tether simulate`: a fleet of realistic simulated devices against a running Tether. */
export async function simulateCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      kind: { type: "string" }, count: { type: "string" }, prefix: { type: "string" },
      "offline-ratio": { type: "string" }, "fail-ratio": { type: "string" }, "brew-ms": { type: "string" },
      mqtt: { type: "string" }, address: { type: "string" }, certs: { type: "string" }, "telemetry-rate": { type: "string" },
    },
  });
  const kind = v.kind === "coffee" || v.kind === "coffee_machine" ? "coffee_machine" : v.kind === "led" ? "led" : undefined;
  if (!kind) throw new Error(SIMULATE_USAGE);
  const count = Number(v.count ?? 1);
  if (!Number.isInteger(count) || count < 1 || count > 20_000) throw new Error("--count must be between 1 and 20000");
  const certsDir = path.resolve(v.certs ?? process.env.TETHER_CERTS_DIR ?? "certs");
  if (!existsSync(path.join(certsDir, "ca.key"))) throw new Error(`no CA in ${certsDir}: start the server once (npm start) or pass --certs`);
  const pki = await ensureDevPki(certsDir);
  const prefix = v.prefix ?? (kind === "led" ? "sim-led" : "sim-coffee");
  const devices = connectClient(DeviceService, { address: v.address, certsDir });
  for (let i = 1; i <= count; i++) {
    try {
      await devices.createDevice({
        deviceId: `${prefix}-${i}`,
        device: { displayName: `Simulated ${kind} ${i}`, labels: { simulated: "true" }, kind: kind === "led" ? { case: "led", value: {} } : { case: "coffeeMachine", value: {} } },
      });
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.AlreadyExists)) throw err;
    }
  }
  const fleet = await startFleet({
    url: v.mqtt ?? process.env.TETHER_MQTT_URL ?? `mqtts://localhost:${process.env.TETHER_MQTT_PORT ?? 8883}`,
    ca: pki.caPem,
    issue: (id) => issueDeviceCertificate(pki.ca, id),
    kind,
    count,
    idPrefix: prefix,
    offlineRatio: Number(v["offline-ratio"] ?? 0),
    failRatio: Number(v["fail-ratio"] ?? 0),
    brewMs: v["brew-ms"] ? Number(v["brew-ms"]) : undefined,
    log: createLogger(process.env.LOG_LEVEL ?? "warn"),
  });
  console.log(`${fleet.devices.length} ${kind} device(s) online, ${fleet.offlineIds.length} offline (${prefix}-1 … ${prefix}-${count}). Ctrl-C to stop.`);
  const timer = setInterval(() => console.log(`executions ${fleet.executions()}, duplicates ${fleet.duplicates()}`), 5000);
  const rate = Number(v["telemetry-rate"] ?? 0);
  if (!(rate >= 0 && rate <= 1000)) throw new Error("--telemetry-rate must be between 0 and 1000 samples/s per device");
  const telemetry = rate > 0 ? setInterval(() => publishTelemetry(fleet, kind), 1000 / rate) : undefined;
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  clearInterval(timer);
  if (telemetry) clearInterval(telemetry);
  await fleet.stop();
  console.log(`stopped: executions ${fleet.executions()}, duplicates ${fleet.duplicates()}`);
}

/** One round of plausible readings from every connected simulated device. */
function publishTelemetry(fleet: Fleet, kind: "led" | "coffee_machine"): void {
  const time = timestampFromDate(new Date());
  fleet.devices.forEach((device, i) => {
    const sim = fleet.simulators[i] as unknown as { water?: number };
    const wave = Math.sin(Date.now() / 60_000 + i);
    const samples =
      kind === "led"
        ? [{ metric: "power_w", value: round(4 + 2 * wave), time }, { metric: "temperature_celsius", value: round(31 + wave), time }]
        : [{ metric: "water_level_percent", value: sim.water ?? 100, time }, { metric: "boiler_temperature_celsius", value: round(92 + 3 * wave), time }];
    samples.push({ metric: "signal_strength", value: Math.round(-60 + 10 * wave), time });
    void device.sendTelemetry(samples).catch(() => undefined);
  });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
