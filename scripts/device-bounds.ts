/**
 * Reads the `Bounds:` lines of the device contract's comments (`proto/tether/device/v1/`) and renders
 * the two artefacts that must agree with them: the nanopb options file firmware is built with, and
 * the table the server enforces (`src/protocol/device-bounds.ts`). Run by `npm run generate`;
 * tests/unit/device-bounds.test.ts renders again and fails when a committed file differs.
 *
 * The comments are the source of truth because they are what a firmware author reads: a limit
 * stated anywhere else would drift from the contract, which is how issue 26 began.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  type FileDescriptorSet,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { maxBodySizes } from "./message-sizes.js";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const OPTIONS_FILE = "proto/tether/device/v1/device.options";
export const TABLE_FILE = "src/protocol/device-bounds.ts";
const PACKAGE = "tether.device.v1";

/** One field's stated bound. `maxBytes` is per string (each item's, for a repeated string). */
export interface Bound {
  maxBytes?: number;
  maxItems?: number;
  keyMaxBytes?: number;
  valueMaxBytes?: number;
  /** Too large for a static buffer on a small device: nanopb decodes/encodes it with a callback. */
  streamed?: boolean;
}

/** A field the walk met: full name, what it is, and its bound (undefined when none is stated). */
export interface ContractField {
  name: string;
  kind: "string" | "bytes" | "repeated" | "map" | "scalar" | "message";
  repeatedOf?: "string" | "bytes" | "message" | "scalar";
  bound?: Bound;
  problem?: string;
}

const BOUND_LINE =
  /^Bounds: at most (\d+) (bytes|items|entries)(?:, each at most (\d+) bytes)?(?:, keys at most (\d+) bytes, values at most (\d+) bytes)?(; streamed)?\.$/;

/** Parses the `Bounds:` line of a comment; a malformed one is reported, never guessed. */
export function parseBound(comment: string | undefined): { bound?: Bound; problem?: string } {
  const line = comment
    ?.split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith("Bounds:"));
  if (!line) return {};
  const m = BOUND_LINE.exec(line);
  if (!m) return { problem: `unreadable bound line: ${line}` };
  const n = Number(m[1]);
  const b: Bound = m[2] === "bytes" ? { maxBytes: n } : { maxItems: n };
  if (m[3]) b.maxBytes = Number(m[3]);
  if (m[4]) b.keyMaxBytes = Number(m[4]);
  if (m[5]) b.valueMaxBytes = Number(m[5]);
  if (m[6]) b.streamed = true;
  return { bound: b };
}

/** The contract's descriptors with comments, as `buf build` compiles them (no network). */
export function loadDescriptors(): FileDescriptorSet {
  const bin = execFileSync(path.join(ROOT, "node_modules/.bin/buf"), ["build", "--as-file-descriptor-set", "-o", "-"], { cwd: ROOT, maxBuffer: 64 << 20 });
  return fromBinary(FileDescriptorSetSchema, bin);
}

/** Every field of the device contract's messages, with the bound its comment states. */
export function readContract(set: FileDescriptorSet = loadDescriptors()): ContractField[] {
  const out: ContractField[] = [];
  for (const file of set.file) {
    if (file.package !== PACKAGE) continue;
    const comments = new Map<string, string>();
    for (const loc of file.sourceCodeInfo?.location ?? []) comments.set(loc.path.join("."), loc.leadingComments);
    const walk = (msg: DescriptorProto, prefix: string, at: number[]) => {
      const full = `${prefix}.${msg.name}`;
      const entries = new Map(msg.nestedType.filter((n) => n.options?.mapEntry).map((n) => [`${full}.${n.name}`, n]));
      msg.field.forEach((f, i) => {
        const name = `${full}.${f.name}`;
        const { bound, problem } = parseBound(comments.get([...at, 2, i].join(".")));
        const isString = f.type === Type.STRING;
        const isBytes = f.type === Type.BYTES;
        const isMsg = f.type === Type.MESSAGE;
        let field: ContractField;
        if (f.label === Label.REPEATED && isMsg && entries.has(f.typeName.slice(1))) field = { name, kind: "map" };
        else if (f.label === Label.REPEATED)
          field = { name, kind: "repeated", repeatedOf: isString ? "string" : isBytes ? "bytes" : isMsg ? "message" : "scalar" };
        else field = { name, kind: isString ? "string" : isBytes ? "bytes" : isMsg ? "message" : "scalar" };
        out.push({ ...field, bound, problem: problem ?? shapeProblem(field, bound) });
      });
      msg.nestedType.forEach((n, j) => {
        if (!n.options?.mapEntry) walk(n, full, [...at, 3, j]);
      });
    };
    for (const [i, m] of file.messageType.entries()) walk(m, file.package, [4, i]);
  }
  return out;
}

/** What is wrong with a field's bound for its kind (undefined: nothing). */
function shapeProblem(f: ContractField, b: Bound | undefined): string | undefined {
  const needs = f.kind === "string" || f.kind === "bytes" || f.kind === "repeated" || f.kind === "map";
  if (!needs) return b ? "states a bound but is neither a string, bytes, repeated field nor map" : undefined;
  if (!b) return "is unbounded: state `Bounds: at most N bytes|items|entries.` in its comment";
  if ((f.kind === "string" || f.kind === "bytes") && (b.maxBytes === undefined || b.maxItems !== undefined)) return "needs `at most N bytes`";
  if (f.kind === "repeated" && (b.maxItems === undefined || (f.repeatedOf === "string" || f.repeatedOf === "bytes") !== (b.maxBytes !== undefined))) {
    return "needs `at most N items` (and `, each at most M bytes` for strings and bytes)";
  }
  if (f.kind === "map" && (b.maxItems === undefined || b.keyMaxBytes === undefined || b.valueMaxBytes === undefined))
    return "needs `at most N entries, keys at most K bytes, values at most V bytes`";
  return undefined;
}

/** The nanopb options file: static buffers sized from the bounds, callbacks where `streamed`. */
export function renderOptions(fields: ContractField[]): string {
  const lines = [
    "# nanopb options for the Tether device contract (tether.device.v1 and the tether.v1 messages it carries).",
    "# Generated by `npm run generate` from the `Bounds:` lines of proto/tether/device/v1/*.proto: do not edit.",
    "# Strings get max_size = bound + 1 (nanopb's terminating NUL). Fields marked `streamed` are callbacks:",
    "# a device that does not set the callback skips them on decode and leaves them out on encode.",
    "# Pass it with `nanopb_generator -f device.options`; later lines win, so a device that wants smaller",
    "# receipts appends `tether.device.v1.UplinkReceipt.message_ids max_count:8` and sends",
    "# `Uplink.max_receipt_ids = 8`.",
    "",
    "# Anything without a line here is an error, not a silent callback: a new unbounded field fails the C build.",
    "* fallback_type:FT_STATIC",
  ];
  for (const f of fields) {
    const b = f.bound;
    if (!b) continue;
    const opts: string[] = [];
    if (b.streamed) opts.push("type:FT_CALLBACK");
    if (b.maxItems !== undefined) opts.push(`max_count:${b.maxItems}`);
    if (b.maxBytes !== undefined) opts.push(`max_size:${b.maxBytes + (f.kind === "bytes" || f.repeatedOf === "bytes" ? 0 : 1)}`);
    lines.push(`${f.name} ${opts.join(" ")}`);
    if (f.kind === "map") {
      // The entry message nanopb generates for a map (`FieldEntry`, in the field's message).
      const i = f.name.lastIndexOf(".");
      const entry = `${f.name.slice(0, i)}.${camel(f.name.slice(i + 1))}Entry`;
      lines.push(`${entry}.key max_size:${b.keyMaxBytes! + 1}`, `${entry}.value max_size:${b.valueMaxBytes! + 1}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The server's table: the same bounds, keyed by full field name. */
export function renderTable(fields: ContractField[]): string {
  const rows = fields
    .filter((f) => f.bound)
    .map(
      (f) =>
        `  "${f.name}": ${JSON.stringify(f.bound)
          .replace(/"(\w+)":/g, "$1: ")
          .replace(/,/g, ", ")
          .replace(/^\{(.*)\}$/, "{ $1 }")},`,
    );
  return [
    "// Generated by `npm run generate` (scripts/device-bounds.ts) from the `Bounds:` lines of",
    "// proto/tether/device/v1/*.proto: do not edit. tests/unit/device-bounds.test.ts checks it is current.",
    "",
    "/** A field's stated bound: bytes per string (per item for repeated strings), items, map key/value bytes. */",
    "export interface FieldBound {",
    "  readonly maxBytes?: number;",
    "  readonly maxItems?: number;",
    "  readonly keyMaxBytes?: number;",
    "  readonly valueMaxBytes?: number;",
    "  /** Decoded/encoded as a stream (nanopb callback) by small devices. */",
    "  readonly streamed?: boolean;",
    "}",
    "",
    "/** Every bounded field of the device contract, by full name (`tether.device.v1.Message.field`). */",
    "export const DEVICE_BOUNDS: Readonly<Record<string, FieldBound>> = {",
    ...rows,
    "};",
    "",
  ].join("\n");
}

const camel = (s: string) => s.replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());

/** Renders both artefacts; `problems` lists fields whose bound is missing or malformed. */
export function renderAll(): { options: string; table: string; problems: string[] } {
  const set = loadDescriptors();
  const fields = readContract(set);
  const bounds = new Map(fields.filter((f) => f.bound).map((f) => [f.name, f.bound!]));
  const sizes = { downlink: maxBodySizes(set, bounds, "tether.device.v1.Downlink"), uplink: maxBodySizes(set, bounds, "tether.device.v1.Uplink") };
  const problems = fields.filter((f) => f.problem).map((f) => `${f.name}: ${f.problem}`);
  // The Downlink's comment states its largest encoded size: it must be the one the bounds give.
  const stated = /Encoded size: at most (\d+) bytes/.exec(downlinkComment(set) ?? "")?.[1];
  const largest = Math.max(...Object.values(sizes.downlink));
  if (Number(stated) !== largest)
    problems.push(`tether.device.v1.Downlink: its comment must say "Encoded size: at most ${largest} bytes" (says ${stated ?? "nothing"})`);
  return { options: renderOptions(fields), table: renderTable(fields) + renderSizes(sizes), problems };
}

function downlinkComment(set: FileDescriptorSet): string | undefined {
  const file = set.file.find((f) => f.name === "tether/device/v1/downlink.proto");
  const i = file?.messageType.findIndex((m) => m.name === "Downlink") ?? -1;
  return file?.sourceCodeInfo?.location.find((l) => l.path.join(".") === `4.${i}`)?.leadingComments;
}

function renderSizes(sizes: { downlink: Record<string, number>; uplink: Record<string, number> }): string {
  const obj = (r: Record<string, number>) => Object.entries(r).map(([k, v]) => `    ${k}: ${Number.isFinite(v) ? v : "Infinity"},`);
  return [
    "",
    "/**",
    " * The largest encoded size of a Downlink / Uplink envelope per body, bytes, from the bounds above",
    " * (message_id and time included; streamed fields at their bound). A telemetry batch at its",
    " * 10000-sample bound is far over the broker's payload limit, which then applies instead.",
    " */",
    "export const MAX_ENVELOPE_BYTES = {",
    "  downlink: {",
    ...obj(sizes.downlink),
    "  },",
    "  uplink: {",
    ...obj(sizes.uplink),
    "  },",
    "} as const;",
    "",
  ].join("\n");
}
