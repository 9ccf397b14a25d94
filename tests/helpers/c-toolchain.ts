import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The C reference device's sources (tests/c-device/). */
export const C_DEVICE_DIR = path.resolve(import.meta.dirname, "../c-device");

/** The Debian packages the C device needs; .ci/run installs them on a fresh machine. */
export const C_PACKAGES = ["nanopb", "libnanopb-dev", "libpaho-mqtt-dev", "make", "gcc"];

const needed = [
  "/usr/bin/nanopb_generator.py",
  "/usr/include/pb.h",
  "/usr/include/MQTTClient.h",
  "/usr/lib/x86_64-linux-gnu/libprotobuf-nanopb.a",
  "/usr/lib/x86_64-linux-gnu/libpaho-mqtt3cs.so",
];

async function has(cmd: string): Promise<boolean> {
  return run("sh", ["-c", `command -v ${cmd}`]).then(
    () => true,
    () => false,
  );
}

/**
 * Makes sure the C toolchain is there, installing the Debian packages when it can (root with
 * apt-get). Returns undefined when ready, or the reason it is not (for a printed skip).
 */
export async function ensureCToolchain(): Promise<string | undefined> {
  const missing = async () => [...needed.filter((f) => !existsSync(f)), ...((await has("gcc")) ? [] : ["gcc"]), ...((await has("make")) ? [] : ["make"])];
  if ((await missing()).length === 0) return undefined;
  if (process.getuid?.() !== 0 || !(await has("apt-get")))
    return `C toolchain missing (${(await missing()).join(", ")}) and not installable here (needs root and apt-get): apt-get install -y ${C_PACKAGES.join(" ")}`;
  try {
    await run("apt-get", ["install", "-y", "-qq", ...C_PACKAGES], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeout: 300_000 });
  } catch (err) {
    return `C toolchain could not be installed: ${String((err as Error).message).slice(0, 300)}`;
  }
  const still = await missing();
  return still.length === 0 ? undefined : `C toolchain still missing after apt-get: ${still.join(", ")}`;
}

/** Builds the C device into `out`; returns the binary's path. */
export async function buildCDevice(out: string): Promise<string> {
  await run("make", ["-s", "-C", C_DEVICE_DIR, `OUT=${out}`], { timeout: 300_000 });
  return path.join(out, "tether-c-device");
}

/** `size(1)` of the protocol objects (protocol.o, generated *.pb.o, nanopb): one row per object. */
export async function cDeviceSizes(out: string): Promise<Array<{ file: string; text: number; data: number; bss: number }>> {
  const { stdout } = await run("make", ["-s", "-C", C_DEVICE_DIR, `OUT=${out}`, "size"], { timeout: 300_000 });
  return stdout
    .trim()
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .map((c) => ({ text: Number(c[0]), data: Number(c[1]), bss: Number(c[2]), file: path.relative(out, c[5]!) }));
}
