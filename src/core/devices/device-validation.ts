import { type Device, DeliveryPolicy_ModeSchema } from "../../../gen/tether/v1/device_pb.js";
import { Violations } from "../errors.js";
import { productByCase } from "../products/index.js";

const LABEL_KEY = /^[a-z][a-z0-9_.-]{0,62}$/;
const MAX_LABELS = 64;

/** Checks the user-settable fields of a device, reporting every bad field under `prefix`. */
export function validateDeviceFields(d: Device, prefix: string, v: Violations, only?: Set<string>): void {
  const check = (f: string) => !only || only.has(f);
  if (check("display_name") && d.displayName.length > 256) v.add(`${prefix}.display_name`, "must be at most 256 characters");
  if (check("owner") && d.owner.length > 256) v.add(`${prefix}.owner`, "must be at most 256 characters");
  if (check("firmware_version") && d.firmwareVersion.length > 64) v.add(`${prefix}.firmware_version`, "must be at most 64 characters");
  if (check("labels")) {
    const entries = Object.entries(d.labels);
    if (entries.length > MAX_LABELS) v.add(`${prefix}.labels`, `must have at most ${MAX_LABELS} entries`);
    for (const [key, value] of entries) {
      if (!LABEL_KEY.test(key)) {
        v.add(`${prefix}.labels`, `key "${key.slice(0, 70)}" must be 1-63 characters [a-z0-9_.-] starting with a lowercase letter`);
      }
      if (value.length > 63) v.add(`${prefix}.labels`, `value of "${key}" must be at most 63 characters`);
    }
  }
  if (check("delivery_policy") && d.deliveryPolicy) {
    if (!DeliveryPolicy_ModeSchema.values.some((e) => e.number === d.deliveryPolicy!.mode)) {
      v.add(`${prefix}.delivery_policy.mode`, `unknown mode ${d.deliveryPolicy.mode}`);
    }
    if (d.deliveryPolicy.maxPendingTasks > 10_000) v.add(`${prefix}.delivery_policy.max_pending_tasks`, "must be at most 10000");
  }
  // The kind's own desired path (`<kind>.desired`), whatever the kind: the product module says
  // what is valid, so a new product type is validated without an edit here.
  if (d.kind.case !== undefined && check(`${productByCase(d.kind.case).kindName}.desired`)) {
    const product = productByCase(d.kind.case);
    const desired = (d.kind.value as { desired?: unknown }).desired;
    if (desired) product.validateDesired(desired as never, `${prefix}.${product.kindName}.desired`, v);
  }
}

export { Violations };
