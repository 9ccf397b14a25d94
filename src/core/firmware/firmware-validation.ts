import type { Firmware } from "../../../gen/tether/v1/firmware_pb.js";
import { truncate } from "../devices/device-name.js";
import { InvalidArgumentError, Violations } from "../errors.js";
import { kindNameList } from "../products/index.js";
import { FIRMWARE_ID, kindNameOf } from "./firmware-record.js";
import { isSemver } from "../semver.js";

const LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const MAX_LABELS = 32;
const MAX_NOTES = 4096;
const MAX_VERSION = 64;

/** The settable metadata of an upload, checked: every bad field is reported at once. */
export function validateFirmwareMetadata(
  f: Firmware | undefined,
  firmwareId: string,
): { kind: string; version: string; releaseNotes: string; hardwareLabels: string[] } {
  if (!f) throw InvalidArgumentError.field("firmware", "is required (kind and version at least)");
  const v = new Violations();
  if (firmwareId !== "" && !FIRMWARE_ID.test(firmwareId)) {
    v.add("firmware_id", "must be 1-63 lowercase letters, digits or hyphens, starting with a letter (or empty for a generated one)");
  }
  const kind = kindNameOf(f.kind);
  if (!kind) v.add("firmware.kind", `is ${f.kind === 0 ? "required" : `not a known product kind (${f.kind})`}: one of ${kindNameList()}`);
  if (f.version === "") v.add("firmware.version", "is required: a semantic version such as 1.2.0");
  else if (f.version.length > MAX_VERSION) v.add("firmware.version", `is longer than ${MAX_VERSION} characters`);
  else if (!isSemver(f.version)) {
    v.add(
      "firmware.version",
      `"${truncate(f.version)}" is not a semantic version (MAJOR.MINOR.PATCH[-pre-release][+build], e.g. 1.2.0 or 2.0.0-rc.1; no "v" prefix)`,
    );
  }
  if (f.releaseNotes.length > MAX_NOTES) v.add("firmware.release_notes", `is longer than ${MAX_NOTES} characters`);
  if (f.hardwareLabels.length > MAX_LABELS) v.add("firmware.hardware_labels", `has ${f.hardwareLabels.length} labels; at most ${MAX_LABELS}`);
  f.hardwareLabels.forEach((l, i) => {
    if (!LABEL.test(l))
      v.add(`firmware.hardware_labels[${i}]`, `"${truncate(l)}" must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  });
  if (new Set(f.hardwareLabels).size !== f.hardwareLabels.length) v.add("firmware.hardware_labels", "has duplicates");
  v.throwIfAny();
  return { kind: kind!, version: f.version, releaseNotes: f.releaseNotes, hardwareLabels: [...f.hardwareLabels] };
}
