/**
 * bench:c-device — what the device contract costs a microcontroller: flash and static RAM of the C
 * reference device's protocol code (tests/c-device/protocol.o, the nanopb-generated *.pb.o and
 * nanopb itself), measured with size(1) on this machine's gcc -Os build (x86-64; an ARM Thumb
 * build is smaller, the RAM figures carry over). Two builds in the same run: the device as
 * shipped (receipts of at most 8 ids, `Uplink.max_receipt_ids = 8`) against the baseline of the
 * shipped options alone (receipts of 500 ids, the contract's maximum). Also prints the largest
 * encoded envelopes the bounds allow (src/protocol/device-bounds.ts), i.e. the MQTT buffer sizes.
 *
 *   npm run bench:c-device      (needs nanopb, libnanopb-dev, libpaho-mqtt-dev, gcc, make)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { MAX_ENVELOPE_BYTES } from "../../src/protocol/device-bounds.js";
import { buildCDevice, cDeviceSizes, ensureCToolchain } from "../helpers/c-toolchain.js";
import { gitDescribe, runBench, writeResults } from "./lib/harness.js";

type Row = Awaited<ReturnType<typeof cDeviceSizes>>[number];

function totals(rows: Row[]) {
  const sum = (f: (r: Row) => number) => rows.reduce((n, r) => n + f(r), 0);
  // The *.pb.o descriptor tables are const, but x86-64 PIC puts relocated pointers in .data: on an
  // MCU they are flash only. So: flash = text + data; static RAM = bss (+ data of protocol.o).
  const own = rows.filter((r) => r.file === "protocol.o");
  return {
    flash: sum((r) => r.text + r.data),
    ram: sum((r) => r.bss) + own.reduce((n, r) => n + r.data, 0),
    nanopb: rows.filter((r) => r.file.startsWith("nanopb/")).reduce((n, r) => n + r.text, 0),
  };
}

runBench(async () => {
  const why = await ensureCToolchain();
  if (why) {
    console.log(`bench:c-device skipped: ${why}`);
    return;
  }
  const dir = await mkdtemp(path.join(tmpdir(), "tether-c-bench-"));
  try {
    const shipped = path.join(dir, "small");
    const baseline = path.join(dir, "baseline");
    await buildCDevice(shipped);
    const small = await cDeviceSizes(shipped);
    process.env.LOCAL_OPTIONS = ""; // make reads it from the environment: the shipped options alone
    await buildCDevice(baseline);
    const base = await cDeviceSizes(baseline);
    delete process.env.LOCAL_OPTIONS;

    console.log(`C reference device protocol code (${gitDescribe()}), size(1), gcc -Os x86-64:\n`);
    console.log("object                                   text    data     bss");
    for (const r of small) console.log(`${r.file.padEnd(38)} ${String(r.text).padStart(7)} ${String(r.data).padStart(7)} ${String(r.bss).padStart(7)}`);
    const a = totals(small);
    const b = totals(base);
    console.log(`\nc-device protocol: flash ${a.flash} B (of which nanopb ${a.nanopb} B), static RAM ${a.ram} B with receipts of 8 ids`);
    console.log(
      `baseline (shipped options alone, receipts of 500 ids): flash ${b.flash} B, static RAM ${b.ram} B — max_receipt_ids = 8 needs ${(a.ram / b.ram).toFixed(2)}× the RAM`,
    );
    console.log("\nlargest encoded envelope per body (bytes; the device's MQTT buffer):");
    console.log(
      `  downlink: ${Object.entries(MAX_ENVELOPE_BYTES.downlink)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`,
    );
    console.log(
      `  uplink:   ${Object.entries(MAX_ENVELOPE_BYTES.uplink)
        .filter(([k]) => k !== "telemetry")
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}, telemetry: as many samples as the device puts in (~100 B each without tags)`,
    );
    await writeResults("c-device", {
      date: new Date().toISOString(),
      git: gitDescribe(),
      shipped: { rows: small, ...a },
      baseline: { rows: base, ...b },
      envelopes: MAX_ENVELOPE_BYTES,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
