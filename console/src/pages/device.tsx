import { useState } from "react";
import { CoffeeMachineStatusSchema, CupSizeSchema, RecipeSchema } from "../../../gen/tether/v1/coffee_machine_pb.js";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { LedModeSchema, type LedState } from "../../../gen/tether/v1/led_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import { api } from "../api.js";
import { link } from "../app.js";
import { CertificatesPanel } from "../components/certificates-panel.js";
import { ErrorBanner } from "../components/error-banner.js";
import { ProductControls } from "../components/product-controls.js";
import { TasksPanel } from "../components/tasks-panel.js";
import { TelemetryPanel } from "../components/telemetry-panel.js";
import { ago, colorHex, enumName, KIND_LABEL, kindOf, timeText } from "../format.js";
import { WatchDevicesResponse_Type as Change } from "../../../gen/tether/v1/device_service_pb.js";
import { mergeDeviceSnapshot } from "../device-merge.js";
import { useNow, usePolling, useStream } from "../hooks.js";

type Row = [label: string, desired: React.ReactNode, reported: React.ReactNode];

const onOff = (v: boolean | undefined) => (v === undefined ? "—" : v ? "on" : "off");
const swatch = (c: LedState["color"]) =>
  c ? (
    <span className="color">
      <span className="swatch" style={{ background: colorHex(c) }} /> {colorHex(c)}
    </span>
  ) : (
    "—"
  );

function stateRows(d: Device): Row[] {
  if (d.kind.case === "led") {
    const { desired: w, reported: r } = d.kind.value;
    return [
      ["power", onOff(w?.power), onOff(r?.power)],
      ["color", swatch(w?.color), swatch(r?.color)],
      ["brightness", w?.brightness ?? "—", r?.brightness ?? "—"],
      ["mode", w?.mode ? enumName(LedModeSchema, w.mode).toLowerCase() : "—", r?.mode ? enumName(LedModeSchema, r.mode).toLowerCase() : "—"],
    ];
  }
  if (d.kind.case === "coffeeMachine") {
    const { desired: w, reported: r } = d.kind.value;
    const brew = r?.currentBrew;
    return [
      ["power", onOff(w?.power), onOff(r?.power)],
      ["status", "", r ? enumName(CoffeeMachineStatusSchema, r.status).toLowerCase() : "—"],
      ["water", "", r ? `${r.waterLevelPercent} %` : "—"],
      ["beans", "", r ? `${r.beanLevelPercent} %` : "—"],
      ["brewing", "", brew ? `${enumName(RecipeSchema, brew.recipe).toLowerCase()} ${enumName(CupSizeSchema, brew.size).toLowerCase()} ${brew.progressPercent} %` : "—"],
    ];
  }
  return [];
}

/** One device: its controls, desired vs reported state, tasks (live), telemetry and certificates. */
export function DevicePage({ id }: { id: string }) {
  // Read once (GetDevice also has the latest telemetry), then kept current by WatchDevices.
  // Both may arrive after a newer WatchDevices change: merged, so the device's newest report wins.
  const q = usePolling((signal) => api.devices.getDevice({ name: `devices/${id}` }, { signal }), 0, [id], mergeDeviceSnapshot);
  const [deleted, setDeleted] = useState(false);
  const live = useStream(
    (signal) => api.devices.watchDevices({ filter: `name = "devices/${id}"` }, { signal }),
    (m) => {
      if (!m.device) return;
      if (m.type === Change.DELETED || m.type === Change.REMOVED) setDeleted(true);
      else q.setValue((prev) => ({ ...m.device!, latestTelemetry: prev?.latestTelemetry ?? [] }));
    },
    [id],
  );
  const [created, setCreated] = useState<Task[]>([]);
  const now = useNow();
  const d = q.value;
  return (
    <section>
      <p>
        <a href="/" onClick={link("/")}>
          ← Fleet
        </a>
      </p>
      <ErrorBanner error={q.error ?? live.error} />
      {deleted && <p className="note">This device was deleted.</p>}
      {d && (
        <>
          <h1>
            {d.displayName || id} <span className="muted">{KIND_LABEL[kindOf(d)]}</span>
          </h1>
          <div className="facts">
            <span>
              <span className={`dot ${d.connectivity?.online ? "on" : "off"}`} /> <span className="online-state">{d.connectivity?.online ? "online" : "offline"}</span>, last seen {ago(d.connectivity?.lastSeenTime, now)}
            </span>
            <span>firmware {d.firmwareVersion || "—"}</span>
            {d.owner && <span>owner {d.owner}</span>}
            {Object.entries(d.labels).map(([k, v]) => (
              <span className="chip" key={k}>
                {k}={v}
              </span>
            ))}
          </div>
          <div className="columns">
            <section className="panel">
              <h2>Controls</h2>
              <ProductControls device={d} onUpdated={(u) => q.setValue((prev) => mergeDeviceSnapshot(prev, u))} onTask={(t) => setCreated((c) => [t, ...c])} />
            </section>
            <section className="panel">
              <h2>State</h2>
              <table className="state" data-testid="state">
                <thead>
                  <tr>
                    <th />
                    <th>desired</th>
                    <th>reported</th>
                  </tr>
                </thead>
                <tbody>
                  {stateRows(d).map(([label, w, r]) => (
                    <tr key={label} data-field={label}>
                      <th>{label}</th>
                      <td className="desired">{w}</td>
                      <td className="reported">{r}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <p className="muted">updated {timeText(d.updateTime)}</p>
            </section>
          </div>
          <TasksPanel device={id} created={created} onChange={q.reload} />
          <TelemetryPanel device={id} />
          <CertificatesPanel device={id} />
        </>
      )}
    </section>
  );
}
