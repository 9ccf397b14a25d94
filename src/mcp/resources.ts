import type { Transport } from "@connectrpc/connect";
import { DeviceService } from "../../gen/tether/v1/device_service_pb.js";
import { TaskService } from "../../gen/tether/v1/task_service_pb.js";
import { TelemetryService } from "../../gen/tether/v1/telemetry_service_pb.js";
import { call, ToolRefusal } from "./tool.js";

/** The resource templates `resources/templates/list` gives. */
export const RESOURCE_TEMPLATES = [
  {
    uriTemplate: "tether://devices/{id}",
    name: "device",
    title: "A device",
    description: "A device's state (kind, labels, desired and reported, online) and its latest telemetry.",
    mimeType: "application/json",
  },
  {
    uriTemplate: "tether://tasks/{+name}",
    name: "task",
    title: "A task",
    description: "A task by its name (tether://tasks/devices/{device}/tasks/{task}): state, result or error.",
    mimeType: "application/json",
  },
];

const DEVICE = /^tether:\/\/devices\/([^/?#]+)$/;
const TASK = /^tether:\/\/tasks\/(.+)$/;

/** The concrete resources `resources/list` gives: the first devices the caller may see. */
export async function listResources(api: Transport, signal: AbortSignal) {
  const res = await api.unary(DeviceService.method.listDevices, signal, 30_000, undefined, { pageSize: 100 });
  return res.message.devices.map((d) => {
    const id = d.name.slice("devices/".length);
    return { uri: `tether://devices/${id}`, name: id, title: d.displayName || id, mimeType: "application/json" };
  });
}

/** Reads one resource through the API, with the caller's rights. */
export async function readResource(api: Transport, uri: string, signal: AbortSignal): Promise<unknown> {
  const device = DEVICE.exec(uri);
  if (device) {
    const name = `devices/${decodeURIComponent(device[1]!)}`;
    const state = await call(api, DeviceService.method.getDevice, { $typeName: "tether.v1.GetDeviceRequest", name }, signal);
    const latest = await call(api, TelemetryService.method.getLatestTelemetry, { $typeName: "tether.v1.GetLatestTelemetryRequest", parent: name }, signal);
    return { device: state, latestTelemetry: latest };
  }
  const task = TASK.exec(uri);
  if (task) {
    return call(api, TaskService.method.getTask, { $typeName: "tether.v1.GetTaskRequest", name: decodeURIComponent(task[1]!) }, signal);
  }
  throw new ToolRefusal("INVALID_ARGUMENT", `uri: not a Tether resource; use tether://devices/{id} or tether://tasks/devices/{device}/tasks/{task}`);
}
