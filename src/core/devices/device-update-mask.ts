import type { Message } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { InvalidArgumentError, Violations } from "../errors.js";
import { PRODUCTS, type Product } from "../products/index.js";

const PLAIN = {
  display_name: "displayName",
  labels: "labels",
  owner: "owner",
  firmware_version: "firmwareVersion",
  delivery_policy: "deliveryPolicy",
} as const;
type PlainPath = keyof typeof PLAIN;
const OUTPUT_ONLY = new Set(["name", "uid", "connectivity", "create_time", "update_time", "etag"]);

/** A validated update mask: which fields to copy from the request into the stored device. */
export interface ResolvedMask {
  /** Top-level groups touched (`labels`, `<kind>.desired`, ...), for validation of just those. */
  topLevel: Set<string>;
  apply(from: Device, to: Device): void;
}

/**
 * Resolves an UpdateDevice mask (AIP-134). An empty mask means "every updatable field that is set
 * in the request". Unknown, output-only and immutable paths are InvalidArgument naming the path.
 */
export function resolveUpdateMask(paths: string[], input: Device, product: Product): ResolvedMask {
  if (paths.length === 0) paths = impliedPaths(input, product);
  const v = new Violations();
  const plain: PlainPath[] = [];
  const desiredFields: string[] = []; // [] entry "" = the whole desired state
  const desiredPrefix = `${product.kindName}.desired`;
  for (const path of paths) {
    if (path in PLAIN) plain.push(path as PlainPath);
    else if (path === desiredPrefix) desiredFields.push("");
    else if (path.startsWith(`${desiredPrefix}.`)) {
      const sub = path.slice(desiredPrefix.length + 1);
      const field = product.desiredSchema.fields.find((f) => f.name === sub);
      if (field) desiredFields.push(field.localName);
      else v.add("update_mask.paths", `"${path}": ${product.desiredSchema.name} has no field "${sub}"`);
    } else if (OUTPUT_ONLY.has(path) || path === `${product.kindName}.reported` || path.startsWith(`${product.kindName}.reported.`)) {
      v.add("update_mask.paths", `"${path}" is output only`);
    } else if (path === product.kindName || path === "kind" || PRODUCTS.some((p) => path === p.kindName || path.startsWith(`${p.kindName}.`))) {
      v.add("update_mask.paths", `"${path}": the product kind is immutable and this device is a ${product.kindName}`);
    } else {
      v.add(
        "update_mask.paths",
        `"${path.slice(0, 80)}" is not an updatable field (display_name, labels, owner, firmware_version, delivery_policy, ${desiredPrefix}[.field])`,
      );
    }
  }
  if (desiredFields.length > 0 && input.kind.case !== undefined && input.kind.case !== product.case) {
    v.add("device.kind", `this device is a ${product.kindName}; set device.${product.kindName}.desired`);
  }
  v.throwIfAny();
  if (paths.length === 0) throw InvalidArgumentError.field("update_mask", "names no field and the request sets no updatable field");

  const topLevel = new Set<string>(plain);
  if (desiredFields.length > 0) topLevel.add(desiredPrefix);
  return {
    topLevel,
    apply(from, to) {
      for (const p of plain) (to as unknown as Record<string, unknown>)[PLAIN[p]] = from[PLAIN[p]];
      if (desiredFields.length === 0) return;
      const src = desiredOf(from, product) ?? create(product.desiredSchema);
      const target = to.kind.value as unknown as { desired?: Message };
      if (desiredFields.includes("")) {
        target.desired = src;
        return;
      }
      const dst = (target.desired ??= create(product.desiredSchema)) as unknown as Record<string, unknown>;
      for (const f of desiredFields) dst[f] = (src as unknown as Record<string, unknown>)[f];
    },
  };
}

function desiredOf(d: Device, product: Product): Message | undefined {
  if (d.kind.case !== product.case) return undefined;
  return (d.kind.value as { desired?: Message }).desired;
}

function impliedPaths(input: Device, product: Product): string[] {
  const paths: string[] = [];
  if (input.displayName !== "") paths.push("display_name");
  if (Object.keys(input.labels).length > 0) paths.push("labels");
  if (input.owner !== "") paths.push("owner");
  if (input.firmwareVersion !== "") paths.push("firmware_version");
  if (input.deliveryPolicy) paths.push("delivery_policy");
  if (desiredOf(input, product)) paths.push(`${product.kindName}.desired`);
  return paths;
}
