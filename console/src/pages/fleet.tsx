import { useEffect, useMemo, useRef, useState } from "react";
import type { Device } from "../../../gen/tether/v1/device_pb.js";
import { WatchDevicesResponse_Type as Change } from "../../../gen/tether/v1/device_service_pb.js";
import { api } from "../api.js";
import { link } from "../app.js";
import { ErrorBanner } from "../components/error-banner.js";
import { buildFilter } from "../filter.js";
import { ago, deviceId } from "../format.js";
import { useNow, usePolling, useStream } from "../hooks.js";
import { kindLabel, PRODUCTS } from "../products/index.js";
import { navigate, useLocation } from "../router.js";

const PAGE_SIZE = 25;

/**
 * The rows to show: the listed page, each replaced by its latest copy from the watch, plus
 * devices the watch reports inside this page's name range (new ones), minus those gone.
 */
function mergeRows(listed: Device[], live: Map<string, Device | null>, lower: string | undefined, upper: string | undefined): Device[] {
  const names = new Set(listed.map((d) => d.name));
  for (const [name, d] of live) if (d && (lower === undefined || name >= lower) && (upper === undefined || name <= upper)) names.add(name);
  const byName = new Map(listed.map((d) => [d.name, d]));
  return [...names]
    .sort()
    .map((n) => (live.has(n) ? live.get(n) : byName.get(n)))
    .filter((d): d is Device => !!d);
}

/**
 * Every device, with its kind, labels and connectivity, filtered from the URL (so views can be
 * shared). The page is listed once (keyset pagination), then kept current by WatchDevices with
 * the same filter: changes, new devices and removals show up without re-reading.
 */
export function FleetPage() {
  const { search } = useLocation();
  const kind = search.get("kind") ?? "";
  const labels = search.get("labels") ?? "";
  const online = search.get("online") ?? "";
  const [labelInput, setLabelInput] = useState(labels);
  // Tokens of the pages before the current one: keyset pagination only goes forward.
  const [tokens, setTokens] = useState<string[]>([""]);
  const filter = buildFilter(kind, labels, online);
  const page = usePolling((signal) => api.devices.listDevices({ pageSize: PAGE_SIZE, pageToken: tokens.at(-1), filter }, { signal }), 0, [
    filter,
    tokens.at(-1),
  ]);
  // The latest copy of each device from the watch; null once deleted or no longer matching.
  const [live, setLive] = useState(new Map<string, Device | null>());
  // Changes are applied in batches (the initial snapshot can be thousands of devices).
  const pending = useRef(new Map<string, Device | null>());
  const flush = useRef<ReturnType<typeof setTimeout>>(undefined);
  const watch = useStream(
    (signal) => api.devices.watchDevices({ filter }, { signal }),
    (m) => {
      const d = m.device;
      if (!d) return;
      pending.current.set(d.name, m.type === Change.DELETED || m.type === Change.REMOVED ? null : d);
      flush.current ??= setTimeout(() => {
        flush.current = undefined;
        const batch = pending.current;
        pending.current = new Map();
        setLive((prev) => new Map([...prev, ...batch]));
      }, 50);
    },
    [filter],
    () => {
      pending.current.clear();
      setLive(new Map());
    },
  );
  useEffect(() => () => clearTimeout(flush.current), []);
  const now = useNow();

  const setParam = (key: string, value: string) => {
    const p = new URLSearchParams(search);
    if (value) p.set(key, value);
    else p.delete(key);
    setTokens([""]);
    navigate(`/${p.size ? `?${p}` : ""}`);
  };
  const listed = page.value?.devices;
  const devices = useMemo(
    () => (listed ? mergeRows(listed, live, tokens.length > 1 ? listed[0]?.name : undefined, page.value?.nextPageToken ? listed.at(-1)?.name : undefined) : []),
    [listed, live, tokens.length, page.value?.nextPageToken],
  );
  return (
    <section>
      <h1>Fleet</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          setParam("labels", labelInput);
        }}
      >
        <label>
          Kind
          <select name="kind" value={kind} onChange={(e) => setParam("kind", e.target.value)}>
            <option value="">any</option>
            {PRODUCTS.map((p) => (
              <option key={p.core.kindName} value={p.core.kindName}>
                {p.core.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Labels
          <input
            name="labels"
            placeholder="room=kitchen, floor"
            value={labelInput}
            onChange={(e) => setLabelInput(e.target.value)}
            onBlur={() => labelInput !== labels && setParam("labels", labelInput)}
          />
        </label>
        <label>
          State
          <select name="online" value={online} onChange={(e) => setParam("online", e.target.value)}>
            <option value="">any</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
      </form>
      <ErrorBanner error={page.error ?? watch.error} showFields />
      <table className="devices">
        <thead>
          <tr>
            <th>Device</th>
            <th>Kind</th>
            <th>Labels</th>
            <th>State</th>
            <th>Last seen</th>
          </tr>
        </thead>
        <tbody>
          {devices.map((d) => {
            const id = deviceId(d.name);
            return (
              <tr key={d.name} data-device={id}>
                <td>
                  <a href={`/devices/${id}`} onClick={link(`/devices/${id}`)}>
                    {d.displayName || id}
                  </a>
                  {d.displayName && <div className="muted">{id}</div>}
                </td>
                <td>{kindLabel(d)}</td>
                <td>
                  {Object.entries(d.labels).map(([k, v]) => (
                    <span className="chip" key={k}>
                      {k}={v}
                    </span>
                  ))}
                </td>
                <td>
                  <span className={`dot ${d.connectivity?.online ? "on" : "off"}`} />{" "}
                  <span className="online-state">{d.connectivity?.online ? "online" : "offline"}</span>
                </td>
                <td title={d.connectivity?.lastSeenTime ? new Date(Number(d.connectivity.lastSeenTime.seconds) * 1000).toLocaleString() : ""}>
                  {ago(d.connectivity?.lastSeenTime, now)}
                </td>
              </tr>
            );
          })}
          {page.value && devices.length === 0 && (
            <tr>
              <td colSpan={5} className="muted">
                No devices{filter ? " match this filter" : " yet: create one with `npx tether devices create`"}.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <div className="pager">
        <button type="button" disabled={tokens.length < 2} onClick={() => setTokens((t) => t.slice(0, -1))}>
          ← Previous
        </button>
        <span className="muted">page {tokens.length}</span>
        <button type="button" disabled={!page.value?.nextPageToken} onClick={() => setTokens((t) => [...t, page.value!.nextPageToken])}>
          Next →
        </button>
      </div>
    </section>
  );
}
