import { InvalidArgumentError } from "../errors.js";
import type { DeviceGroupBy } from "../ports/device-repository.js";
import { compareSemver, isSemver } from "../semver.js";

/** Most groups CountDevices returns; the devices in the others are summed in `other_count`. */
export const COUNT_MAX_GROUPS = 1000;

const LABEL_KEY = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

/** CountDevicesRequest.group_by: empty, `firmware_version`, `kind`, `online` or `labels.<key>`. */
export function parseGroupBy(text: string): DeviceGroupBy | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  if (t === "firmware_version" || t === "kind" || t === "online") return { field: t };
  if (t.startsWith("labels.") && LABEL_KEY.test(t.slice("labels.".length))) return { field: "label", key: t.slice("labels.".length) };
  throw InvalidArgumentError.field("group_by", `cannot group by "${t.slice(0, 80)}": use firmware_version, kind, online or labels.<key>`);
}

type Group = { value: string | undefined; count: number };

/**
 * Groups in the order the API promises: firmware versions newest first by semver precedence (then
 * the non-semver ones in text order), anything else ascending by value, a missing label last.
 */
export function sortGroups(groups: Group[], by: DeviceGroupBy | undefined): Group[] {
  const text = (a: Group, b: Group) => (a.value === b.value ? 0 : a.value === undefined ? 1 : b.value === undefined ? -1 : a.value < b.value ? -1 : 1);
  if (by?.field !== "firmware_version") return [...groups].sort(text);
  return [...groups].sort((a, b) => {
    const x = isSemver(a.value ?? "");
    const y = isSemver(b.value ?? "");
    if (x && y) return compareSemver(b.value!, a.value!) || text(a, b);
    if (x !== y) return x ? -1 : 1;
    return text(a, b);
  });
}
