import type { DescEnum } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import type { Device } from "../../gen/tether/v1/device_pb.js";
import type { Color } from "../../gen/tether/v1/led_pb.js";

/** An enum value's name without its prefix, readable: `STATE_SUCCEEDED` → `SUCCEEDED`. */
export function enumName(e: DescEnum, value: number): string {
  const v = e.values.find((x) => x.number === value);
  // localName is the TypeScript name, with the enum's shared prefix (`STATE_`) removed.
  return v ? v.localName : String(value);
}

/** The settable values of an enum (all but UNSPECIFIED), as [number, label]. */
export function enumOptions(e: DescEnum): Array<[number, string]> {
  return e.values.filter((v) => v.number !== 0).map((v) => [v.number, enumName(e, v.number).toLowerCase().replaceAll("_", " ")]);
}

export const deviceId = (name: string) => name.replace(/^devices\//, "");

export function kindOf(d: Device): "led" | "coffee_machine" | "unknown" {
  return d.kind.case === "led" ? "led" : d.kind.case === "coffeeMachine" ? "coffee_machine" : "unknown";
}

export const KIND_LABEL = { led: "LED", coffee_machine: "Coffee machine", unknown: "Unknown" };

export function date(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

export function timeText(ts: Timestamp | undefined): string {
  const d = date(ts);
  return d ? d.toLocaleString() : "—";
}

/** "12 s ago", "3 min ago", "2 h ago", or a date. */
export function ago(ts: Timestamp | undefined, now = Date.now()): string {
  const d = date(ts);
  if (!d) return "never";
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return d.toLocaleDateString();
}

export function colorHex(c: Color | undefined): string {
  if (!c) return "#000000";
  return `#${[c.red, c.green, c.blue].map((x) => x.toString(16).padStart(2, "0")).join("")}`;
}

export function hexColor(hex: string): { red: number; green: number; blue: number } {
  const n = Number.parseInt(hex.replace("#", ""), 16);
  return { red: (n >> 16) & 255, green: (n >> 8) & 255, blue: n & 255 };
}
