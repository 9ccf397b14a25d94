import type { MessageInitShape } from "@bufbuild/protobuf";
import { useState } from "react";
import type { Device, DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import type { Task } from "../../gen/tether/v1/task_pb.js";
import { api } from "./api.js";
import type { CommandInit } from "./commands.js";
import { type ReadableError, readable } from "./errors.js";

export type DeviceKindInit = MessageInitShape<typeof DeviceSchema>["kind"];

/** Runs one call for a control, keeping its error (with field reasons) until the next try. */
export function useAction() {
  const [error, setError] = useState<ReadableError>();
  const [busy, setBusy] = useState(false);
  const run = async (f: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await f();
    } catch (err) {
      setError(readable(err));
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

/**
 * Desired-state update of one field (`path`, e.g. `<kind>.desired.<field>`), with a field mask so
 * concurrent edits of other fields survive.
 */
export function updateDesired(d: Device, kind: DeviceKindInit, path: string): Promise<Device> {
  return api.devices.updateDevice({ device: { name: d.name, kind }, updateMask: { paths: [path] } });
}

export function createTask(d: Device, command: CommandInit): Promise<Task> {
  return api.tasks.createTask({ parent: d.name, task: { command }, requestId: crypto.randomUUID() });
}
