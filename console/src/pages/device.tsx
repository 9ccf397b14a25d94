import { useState } from "react";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import { api } from "../api.js";
import { link } from "../app.js";
import { CertificatesPanel } from "../components/certificates-panel.js";
import { ErrorBanner } from "../components/error-banner.js";
import { ProductControls } from "../components/product-controls.js";
import { TasksPanel } from "../components/tasks-panel.js";
import { TelemetryPanel } from "../components/telemetry-panel.js";
import { ago, timeText } from "../format.js";
import { WatchDevicesResponse_Type as Change } from "../../../gen/tether/v1/device_service_pb.js";
import { mergeDeviceSnapshot } from "../device-merge.js";
import { useNow, usePolling, useStream } from "../hooks.js";
import { kindLabel, metricsOf, productOf, stateRows } from "../products/index.js";

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
            {d.displayName || id} <span className="muted">{kindLabel(d)}</span>
          </h1>
          <div className="facts">
            <span>
              <span className={`dot ${d.connectivity?.online ? "on" : "off"}`} />{" "}
              <span className="online-state">{d.connectivity?.online ? "online" : "offline"}</span>, last seen {ago(d.connectivity?.lastSeenTime, now)}
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
          <TelemetryPanel device={id} metrics={metricsOf(productOf(d))} />
          <CertificatesPanel device={id} />
        </>
      )}
    </section>
  );
}
