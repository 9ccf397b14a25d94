import type { DescField, DescMessage, MessageShape } from "@bufbuild/protobuf";
import { reflect, type ReflectList, type ReflectMap, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { DEVICE_BOUNDS, type FieldBound } from "../protocol/device-bounds.js";
import type { FieldViolation } from "./errors.js";

/**
 * The device contract's byte and count bounds (stated in proto/tether/device/v1/*.proto, generated
 * into src/protocol/device-bounds.ts), checked on a message. One function for both directions:
 * uplink over a bound is refused with the field and the bound, and a downlink is checked before
 * it leaves, so a device built with the shipped nanopb options can always decode what it gets.
 */

/** Bytes of `s` in UTF-8 (what a device's buffer holds), without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3; // BMP character, or a lone surrogate (encoded as U+FFFD, 3 bytes)
  }
  return n;
}

/** `s` shortened to at most `maxBytes` of UTF-8, never splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (utf8Length(s) <= maxBytes) return s;
  let n = 0;
  let i = 0;
  for (const ch of s) {
    const len = utf8Length(ch);
    if (n + len > maxBytes) break;
    n += len;
    i += ch.length;
  }
  return s.slice(0, i);
}

/** The stated bound of a field, if any. */
export const boundOf = (f: DescField): FieldBound | undefined => DEVICE_BOUNDS[`${f.parent.typeName}.${f.name}`];

/**
 * Every place `msg` exceeds a bound, as field paths in proto names (`telemetry.samples[3].metric`)
 * with the bound and what was found. Stops after `max` violations: enough to say what is wrong.
 */
export function boundViolations<D extends DescMessage>(schema: D, msg: MessageShape<D>, max = 20): FieldViolation[] {
  const out: FieldViolation[] = [];
  walk(reflect(schema, msg), "", out, max);
  return out;
}

function walk(r: ReflectMessage, prefix: string, out: FieldViolation[], max: number): void {
  for (const f of r.fields) {
    if (out.length >= max) return;
    if (!r.isSet(f)) continue;
    const path = `${prefix}${f.name}`;
    const b = boundOf(f);
    switch (f.fieldKind) {
      case "scalar":
        if (b?.maxBytes !== undefined) bytes(r.get(f), b.maxBytes, path, out);
        break;
      case "message":
        walk(r.get(f) as ReflectMessage, `${path}.`, out, max);
        break;
      case "list": {
        const list = r.get(f) as ReflectList;
        if (b?.maxItems !== undefined && list.size > b.maxItems)
          out.push({ field: path, description: `must have at most ${b.maxItems} items, got ${list.size}` });
        let i = 0;
        for (const item of list) {
          if (out.length >= max) return;
          if (f.listKind === "message") walk(item as ReflectMessage, `${path}[${i}].`, out, max);
          else if (b?.maxBytes !== undefined) bytes(item, b.maxBytes, `${path}[${i}]`, out);
          i++;
        }
        break;
      }
      case "map": {
        const map = r.get(f) as ReflectMap;
        if (b?.maxItems !== undefined && map.size > b.maxItems)
          out.push({ field: path, description: `must have at most ${b.maxItems} entries, got ${map.size}` });
        for (const [k, v] of map) {
          if (out.length >= max) return;
          const at = `${path}[${JSON.stringify(String(k)).slice(0, 80)}]`;
          if (b?.keyMaxBytes !== undefined) bytes(k, b.keyMaxBytes, `${at} (key)`, out);
          if (b?.valueMaxBytes !== undefined) bytes(v, b.valueMaxBytes, at, out);
        }
        break;
      }
    }
  }
}

function bytes(v: unknown, maxBytes: number, field: string, out: FieldViolation[]): void {
  const n = typeof v === "string" ? utf8Length(v) : v instanceof Uint8Array ? v.length : 0;
  if (n > maxBytes) out.push({ field, description: `must be at most ${maxBytes} bytes (UTF-8), got ${n}` });
}

/**
 * The last check before Tether sends a device message: over a bound is a bug in Tether (every
 * builder fits its text to the bounds), and the message is not sent — a device built with the
 * shipped nanopb options would fail to decode it and could lose the whole message.
 */
export function assertWithinBounds<D extends DescMessage>(schema: D, msg: MessageShape<D>): void {
  const over = boundViolations(schema, msg, 3);
  if (over.length > 0)
    throw new Error(`${schema.typeName} not sent: over the device contract's bounds (${over.map((o) => `${o.field} ${o.description}`).join("; ")})`);
}
