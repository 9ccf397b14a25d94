/**
 * bench:uplink-ack — what does it cost that Tether's bridge acknowledges (PUBACK) a QoS 1 uplink
 * message only once the intake took it?
 *
 * mqtt.js acknowledges a QoS 1 PUBLISH once `client.handleMessage(packet, cb)` calls back, and it
 * handles the next incoming packet only after that. Three ways, against one Mosquitto started from
 * deploy/mosquitto/, with a simulated submit of BENCH_SUBMIT_MS (a durable-queue confirm or a few
 * SQL statements):
 * - ack-on-receipt: PUBACK at once (the baseline; loses what the intake never took);
 * - ack-after-submit: the callback waits for the submit (one message at a time);
 * - ack-when-taken: what the bridge does (`src/link/ack-when-taken.ts`): the next packet is read
 *   at once, PUBACKs wait for their submit and go out in order.
 *
 *   npm run bench -- uplink-ack      (needs /usr/sbin/mosquitto)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { ackWhenTaken } from "../../src/link/ack-when-taken.js";
import { ensureDevPki, issueDeviceCertificate, issueServiceCertificate } from "../../src/pki/dev-pki.js";
import { startMosquitto, writeCrl } from "../helpers/mosquitto.js";
import { createCleanups, envNumber, gitDescribe, runBench, writeResults } from "./lib/harness.js";

const MESSAGES = envNumber("BENCH_MESSAGES", 20_000, 100);
const DEVICES = envNumber("BENCH_DEVICES", 20, 1);
const SUBMIT_MS = envNumber("BENCH_SUBMIT_MS", 1, 0);
const TIMEOUT_MS = envNumber("BENCH_TIMEOUT_MS", 120_000, 1000);

type Mode = "ack-on-receipt" | "ack-after-submit" | "ack-when-taken";

async function main(): Promise<void> {
  const cleanups = createCleanups();
  try {
    const dir = await mkdtemp(path.join(tmpdir(), "tether-bench-ack-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pki = await ensureDevPki(dir);
    await writeCrl(dir, []);
    const broker = await startMosquitto({ certsDir: dir });
    cleanups.push(() => broker.stop());
    const service = await issueServiceCertificate(pki.ca, "tether");
    const devices: MqttClient[] = [];
    for (let i = 0; i < DEVICES; i++) {
      const id = `bench-${i}`;
      const cert = await issueDeviceCertificate(pki.ca, id);
      devices.push(await mqtt.connectAsync(broker.url, { clientId: id, ca: pki.caPem, cert: cert.certPem, key: cert.keyPem, protocolVersion: 4 }));
    }
    cleanups.push(() => Promise.all(devices.map((d) => d.endAsync())));
    console.log(`${MESSAGES} QoS 1 uplink messages from ${DEVICES} devices, submit takes ${SUBMIT_MS} ms, git ${gitDescribe()}`);

    const results: Record<string, unknown> = {};
    for (const mode of ["ack-on-receipt", "ack-after-submit", "ack-when-taken"] as Mode[]) {
      const bridge = await mqtt.connectAsync(broker.url, {
        clientId: `tether-bench-${mode}`,
        ca: pki.caPem,
        cert: service.certPem,
        key: service.keyPem,
        protocolVersion: 5,
        clean: true,
      });
      let submitted = 0;
      let inSubmit = 0;
      let maxInSubmit = 0;
      const submit = async () => {
        inSubmit++;
        maxInSubmit = Math.max(maxInSubmit, inSubmit);
        if (SUBMIT_MS > 0) await new Promise((r) => setTimeout(r, SUBMIT_MS));
        inSubmit--;
        submitted++;
      };
      if (mode === "ack-after-submit") {
        (bridge as unknown as { handleMessage: (p: unknown, cb: (err?: Error) => void) => void }).handleMessage = (_p, cb) =>
          void submit().then(() => cb(), cb);
      } else if (mode === "ack-when-taken") {
        ackWhenTaken(bridge, submit);
      } else {
        bridge.on("message", () => void submit());
      }
      await bridge.subscribeAsync("$share/tether/tether/v1/devices/+/up", { qos: 1 });
      const started = performance.now();
      const payload = Buffer.alloc(64, 1);
      const per = Math.ceil(MESSAGES / DEVICES);
      await Promise.all(
        devices.map(async (d, i) => {
          const sends: Array<Promise<unknown>> = [];
          for (let n = 0; n < per; n++) sends.push(d.publishAsync(`tether/v1/devices/bench-${i}/up`, payload, { qos: 1 }));
          await Promise.all(sends);
        }),
      );
      const published = performance.now();
      const total = per * DEVICES;
      while (submitted < total && performance.now() - started < TIMEOUT_MS) await new Promise((r) => setTimeout(r, 20));
      const seconds = (performance.now() - started) / 1000;
      const r = {
        delivered: submitted,
        undelivered: total - submitted,
        seconds: +seconds.toFixed(2),
        perSecond: Math.round(submitted / seconds),
        publishSeconds: +((published - started) / 1000).toFixed(2),
        maxConcurrentSubmits: maxInSubmit,
      };
      results[mode] = r;
      console.log(
        `${mode.padEnd(18)} ${String(r.perSecond).padStart(7)} msg/s  ${r.delivered}/${total} in ${r.seconds} s (publishers done after ${r.publishSeconds} s), submits in parallel: max ${r.maxConcurrentSubmits}`,
      );
      await bridge.endAsync();
    }
    const a = results["ack-on-receipt"] as { perSecond: number };
    const b = results["ack-after-submit"] as { perSecond: number };
    const c = results["ack-when-taken"] as { perSecond: number };
    console.log(`ack-after-submit / ack-on-receipt: ${(b.perSecond / a.perSecond).toFixed(3)}`);
    console.log(`ack-when-taken / ack-on-receipt: ${(c.perSecond / a.perSecond).toFixed(3)}`);
    await writeResults("uplink-ack", { git: gitDescribe(), messages: MESSAGES, devices: DEVICES, submitMs: SUBMIT_MS, results });
  } finally {
    await cleanups.run();
  }
}

runBench(main);
