import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { PRODUCTS, type Product, productNamed } from "../core/products/index.js";
import type { SimOptions } from "../core/products/sim-behaviour.js";
import { connectClient } from "./client.js";

/** Every name `--kind` accepts, from the product registry. */
const kindNames = (p: Product) => [p.kindName, ...p.words.aliases];
/** Each product's simulator options, as `--flag` lines of the usage. */
const optionLines = PRODUCTS.flatMap((p) => p.sim.options.map((o) => `    --${o.flag} N  (${p.kindName}) ${o.description}`));

export const SIMULATE_USAGE = `tether simulate --kind ${PRODUCTS.flatMap(kindNames).join("|")} [--count N] [--prefix ID] [--offline-ratio 0.1]
                [--fail-ratio 0.05] [--telemetry-rate 1] [--mqtt mqtts://localhost:8883] [product options]
  Registers N devices (if missing), issues them certificates from the dev CA in certs/, connects them over
  MQTT and runs them until Ctrl-C, printing executions and duplicates every 5 s. With --telemetry-rate R,
  each device also publishes R readings per second: its product's metrics (${PRODUCTS.map((p) => `${p.kindName}: ${p.metrics.map((m) => m.name).join(", ")}`).join("; ")})
  and the ephemeral signal_strength.${optionLines.length > 0 ? `\n  Product options:\n${optionLines.join("\n")}` : ""}`;

/** `tether simulate`: a fleet of realistic simulated devices against a running Tether. */
export async function simulateCommand(argv: string[], opts: { stop?: Promise<void> } = {}): Promise<void> {
  const productFlags = Object.fromEntries(PRODUCTS.flatMap((p) => p.sim.options.map((o) => [o.flag, { type: "string" as const }])));
  const { values: v } = parseArgs({
    args: argv,
    options: {
      ...productFlags,
      kind: { type: "string" },
      count: { type: "string" },
      prefix: { type: "string" },
      "offline-ratio": { type: "string" },
      "fail-ratio": { type: "string" },
      mqtt: { type: "string" },
      address: { type: "string" },
      certs: { type: "string" },
      "telemetry-rate": { type: "string" },
    },
  });
  const product = v.kind === undefined ? undefined : productNamed(String(v.kind));
  if (!product) throw new Error(SIMULATE_USAGE);
  const options = simOptions(product, v as Record<string, unknown>);
  const count = Number(v.count ?? 1);
  if (!Number.isInteger(count) || count < 1 || count > 20_000) throw new Error("--count must be between 1 and 20000");
  const rate = Number(v["telemetry-rate"] ?? 0);
  if (!(rate >= 0 && rate <= 1000)) throw new Error("--telemetry-rate must be between 0 and 1000 samples/s per device");
  const certsDir = path.resolve(String(v.certs ?? process.env.TETHER_CERTS_DIR ?? "certs"));
  if (!existsSync(path.join(certsDir, "ca.key"))) throw new Error(`no CA in ${certsDir}: start the server once (npm start) or pass --certs`);
  // Loaded only now: `tether --help` shows this usage without the MQTT client, the X.509 library and pino.
  const [{ createLogger }, { ensureDevPki, issueDeviceCertificate }, { startFleet }] = await Promise.all([
    import("../log.js"),
    import("../pki/dev-pki.js"),
    import("../sim/fleet.js"),
  ]);
  const pki = await ensureDevPki(certsDir);
  // The shortest name people use for the kind, dashed, so ids stay short (an alias when it is shorter).
  const prefix = String(v.prefix ?? `sim-${[...kindNames(product)].sort((a, b) => a.length - b.length)[0]!.replaceAll("_", "-")}`);
  const devices = connectClient(DeviceService, { address: v.address as string | undefined, certsDir });
  const kind = { case: product.case, value: {} } as MessageInitShape<typeof DeviceSchema>["kind"];
  for (let i = 1; i <= count; i++) {
    try {
      await devices.createDevice({
        deviceId: `${prefix}-${i}`,
        device: { displayName: `Simulated ${product.label} ${i}`, labels: { simulated: "true" }, kind },
      });
    } catch (err) {
      if (!(err instanceof ConnectError && err.code === Code.AlreadyExists)) throw err;
    }
  }
  await refuseIfConnected(devices, prefix, count);
  const fleet = await startFleet({
    url: String(v.mqtt ?? process.env.TETHER_MQTT_URL ?? `mqtts://localhost:${process.env.TETHER_MQTT_PORT ?? 8883}`),
    ca: pki.caPem,
    issue: (id) => issueDeviceCertificate(pki.ca, id),
    kind: product.kindName,
    count,
    idPrefix: prefix,
    offlineRatio: Number(v["offline-ratio"] ?? 0),
    failRatio: Number(v["fail-ratio"] ?? 0),
    options,
    // The clock ticks once a second without telemetry (physics still runs), else at the telemetry rate.
    tickMs: rate > 0 ? 1000 / rate : 1000,
    telemetry: rate > 0,
    log: createLogger(process.env.LOG_LEVEL ?? "warn"),
  });
  console.log(`${fleet.devices.length} ${product.pluralLabel} online, ${fleet.offlineIds.length} offline (${prefix}-1 … ${prefix}-${count}). Ctrl-C to stop.`);
  const timer = setInterval(() => console.log(`executions ${fleet.executions()}, duplicates ${fleet.duplicates()}`), 5000);
  // `stop` lets a test end the run without signalling its own process.
  await (opts.stop ??
    new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    }));
  clearInterval(timer);
  await fleet.stop();
  console.log(`stopped: executions ${fleet.executions()}, duplicates ${fleet.duplicates()}`);
}

/**
 * A second simulator on the same ids would take over the first one's sessions, and the two would
 * knock each other off in turn: refuse while any of them is connected (one filtered list query).
 */
async function refuseIfConnected(devices: Client<typeof DeviceService>, prefix: string, count: number): Promise<void> {
  const ours = (name: string) => {
    const m = /^devices\/(.+)-(\d+)$/.exec(name);
    return m !== null && m[1] === prefix && Number(m[2]) >= 1 && Number(m[2]) <= count;
  };
  let pageToken = "";
  do {
    const page = await devices.listDevices({ filter: 'online = true AND labels.simulated = "true"', pageSize: 1000, pageToken });
    const busy = page.devices.find((d) => ours(d.name));
    if (busy) throw new Error(`${busy.name} is connected already (another simulator?): stop that one, or pick other ids with --prefix`);
    pageToken = page.nextPageToken;
  } while (pageToken);
}

/** The product's own flags as numbers; another product's flag is a mistake worth saying. */
function simOptions(product: Product, values: Record<string, unknown>): SimOptions {
  const options: Record<string, number> = {};
  for (const p of PRODUCTS) {
    for (const o of p.sim.options) {
      const raw = values[o.flag];
      if (raw === undefined) continue;
      if (p !== product && !product.sim.options.some((x) => x.flag === o.flag))
        throw new Error(`--${o.flag} is for ${p.pluralLabel}, not ${product.pluralLabel}`);
      const n = Number(raw);
      if (!Number.isFinite(n)) throw new Error(`--${o.flag} must be a number`);
      options[o.name] = n;
    }
  }
  return options;
}
