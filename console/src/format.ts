import type { DescEnum } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";

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

/** An enum value for a state table: lower case, spaces for underscores, "—" when unset (0). */
export function enumText(e: DescEnum, value: number | undefined): string {
  return value ? enumName(e, value).toLowerCase().replaceAll("_", " ") : "—";
}

export const onOff = (v: boolean | undefined) => (v === undefined ? "—" : v ? "on" : "off");

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
