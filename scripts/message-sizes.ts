/**
 * The largest protobuf encoding a message can have under the contract's bounds: what a device's
 * MQTT receive buffer must hold. Computed from the descriptors, so it follows the bounds.
 */
import { isFieldSet } from "@bufbuild/protobuf";
import {
  type DescriptorProto,
  type FieldDescriptorProto,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as T,
  FieldDescriptorProtoSchema,
  type FileDescriptorSet,
} from "@bufbuild/protobuf/wkt";
import type { Bound } from "./device-bounds.js";

/** The oneof a field belongs to (descriptor.proto is proto2: an unset index reads as 0). */
const oneofOf = (f: FieldDescriptorProto) => (isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) && !f.proto3Optional ? f.oneofIndex : undefined);

const varintLen = (n: number) => (n < 128 ? 1 : Math.ceil(Math.log2(n + 1) / 7));

/** Bytes of the largest value of a scalar type (varints at their widest: negative int32 takes 10). */
function scalarMax(t: T): number {
  switch (t) {
    case T.DOUBLE:
    case T.FIXED64:
    case T.SFIXED64:
      return 8;
    case T.FLOAT:
    case T.FIXED32:
    case T.SFIXED32:
      return 4;
    case T.BOOL:
      return 1;
    case T.UINT32:
    case T.SINT32:
      return 5;
    default:
      return 10; // int32, int64, uint64, sint64, enum
  }
}

/** Largest encoded size of each `body` member of an envelope (Downlink, Uplink), envelope fields included. */
export function maxBodySizes(set: FileDescriptorSet, bounds: Map<string, Bound>, envelope: string): Record<string, number> {
  const messages = new Map<string, DescriptorProto>();
  const collect = (m: DescriptorProto, prefix: string) => {
    messages.set(`${prefix}.${m.name}`, m);
    for (const n of m.nestedType) collect(n, `${prefix}.${m.name}`);
  };
  for (const f of set.file) for (const m of f.messageType) collect(m, f.package);

  const memo = new Map<string, number>();
  const sizeOf = (name: string): number => {
    if (memo.has(name)) return memo.get(name)!;
    const m = messages.get(name);
    if (!m) throw new Error(`unknown message ${name}`);
    const oneofs = new Map<number, number>();
    let total = 0;
    for (const f of m.field) {
      const s = fieldMax(name, f);
      const o = oneofOf(f);
      if (o !== undefined) oneofs.set(o, Math.max(oneofs.get(o) ?? 0, s));
      else total += s;
    }
    for (const s of oneofs.values()) total += s;
    memo.set(name, total);
    return total;
  };
  const lengthDelimited = (n: number) => varintLen(n) + n;
  const fieldMax = (parent: string, f: FieldDescriptorProto): number => {
    const tag = varintLen(f.number << 3);
    const b = bounds.get(`${parent}.${f.name}`);
    const one = (): number => {
      if (f.type === T.STRING || f.type === T.BYTES) return b?.maxBytes === undefined ? Infinity : lengthDelimited(b.maxBytes);
      if (f.type === T.MESSAGE) {
        const entry = messages.get(f.typeName.slice(1));
        if (entry?.options?.mapEntry)
          return lengthDelimited(1 + lengthDelimited(b?.keyMaxBytes ?? Infinity) + 1 + lengthDelimited(b?.valueMaxBytes ?? Infinity));
        return lengthDelimited(sizeOf(f.typeName.slice(1)));
      }
      return scalarMax(f.type);
    };
    if (f.label === Label.REPEATED) return (b?.maxItems ?? Infinity) * (tag + one());
    return tag + one();
  };

  const env = messages.get(envelope)!;
  const body = env.oneofDecl.findIndex((o) => o.name === "body");
  const common = env.field.filter((f) => oneofOf(f) !== body).reduce((n, f) => n + fieldMax(envelope, f), 0);
  return Object.fromEntries(env.field.filter((f) => oneofOf(f) === body).map((f) => [f.name, common + fieldMax(envelope, f)]));
}
