import { CommandSchema } from "../../gen/tether/v1/command_pb.js";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { LINK_METRICS, PRODUCTS } from "../core/products/index.js";
import { messageSchema, toolInput } from "./json-schema.js";
import { CONFIRM_ARG, methodTool, type ToolDef, ToolRefusal } from "./tool.js";

const m = DeviceService.method;

/** What `describe_product` says of one product: its command (from the Command oneof arm), desired state and metrics. */
function describe(kindName: string) {
  const product = PRODUCTS.find((p) => p.kindName === kindName);
  if (!product) throw new ToolRefusal("INVALID_ARGUMENT", `kind: unknown product "${kindName}"; one of ${PRODUCTS.map((p) => p.kindName).join(", ")}`);
  const arm = CommandSchema.fields.find((f) => f.localName === product.case);
  return {
    kind: product.kindName,
    label: product.label,
    // What create_task's `command` takes for this product: `{"<arm>": <this>}`.
    commandField: arm?.name,
    command: arm?.fieldKind === "message" ? messageSchema(arm.message) : undefined,
    desiredState: messageSchema(product.desiredSchema),
    metrics: [...product.metrics, ...LINK_METRICS].map((x) => ({ name: x.name, unit: x.unit, description: x.description })),
  };
}

/** Devices: list (fleet filter), get, delete (destructive), and the product registry's commands. */
export const deviceTools: ToolDef[] = [
  methodTool(m.listDevices, {
    name: "list_devices",
    description: `List devices you may see; AIP-160 filter e.g. \`kind = "${PRODUCTS[0]!.kindName}" AND (labels.room = "kitchen" OR labels.room = "hall") AND online = true\` (also owner, firmware_version, last_seen_time, reported state; kinds: ${PRODUCTS.map((p) => p.kindName).join(", ")}).`,
    inputSchema: toolInput(m.listDevices.input, { pick: ["filter", "page_size", "page_token"] }),
    annotations: { title: "List devices", readOnlyHint: true },
  }),
  methodTool(m.countDevices, {
    name: "count_devices",
    description:
      "Count the devices you may see that match a filter (as list_devices), in total or per group_by: firmware_version, kind, online or labels.<key>.",
    inputSchema: toolInput(m.countDevices.input, { pick: ["filter", "group_by"] }),
    annotations: { title: "Count devices", readOnlyHint: true },
  }),
  methodTool(m.getDevice, {
    name: "get_device",
    description: "Get one device (`devices/{device}`): kind, labels, desired and reported state, online.",
    inputSchema: toolInput(m.getDevice.input, { pick: ["name"], required: ["name"] }),
    annotations: { title: "Get a device", readOnlyHint: true },
  }),
  {
    name: "describe_product",
    description: "Describe a product kind's commands (the JSON create_task takes), desired state and telemetry metrics; no kind: every product.",
    inputSchema: toolInput(undefined, { extra: { kind: { type: "string", enum: PRODUCTS.map((p) => p.kindName) } } }),
    annotations: { title: "Describe a product", readOnlyHint: true },
    run: async (_api, args) => (typeof args.kind === "string" ? describe(args.kind) : { products: PRODUCTS.map((p) => describe(p.kindName)) }),
  },
  methodTool(m.deleteDevice, {
    name: "delete_device",
    description: "Delete a device (`devices/{device}`) and end its sessions. Destructive: pass confirm: true only after the user agreed.",
    inputSchema: toolInput(m.deleteDevice.input, { pick: ["name", "etag"], extra: { confirm: CONFIRM_ARG }, required: ["name", "confirm"] }),
    annotations: { title: "Delete a device", destructiveHint: true, idempotentHint: true },
    needsConfirm: () => true,
  }),
];
