import type { Device } from "../../../gen/tether/v1/device_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import { productOf } from "../products/index.js";

interface Props {
  device: Device;
  /** The device after a successful update, to show at once. */
  onUpdated(d: Device): void;
  /** A task the controls created, to show at once. */
  onTask(t: Task): void;
}

/** The controls of the device's product: what this device can be told to do. */
export function ProductControls({ device, onUpdated, onTask }: Props) {
  const p = productOf(device);
  if (!p || device.kind.case === undefined) return <p className="muted">This device's product kind is unknown to this console.</p>;
  return <p.Controls device={device} value={device.kind.value} onUpdated={onUpdated} onTask={onTask} />;
}
