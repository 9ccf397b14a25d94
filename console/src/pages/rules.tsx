import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useState } from "react";
import { type Rule, Rule_MisfirePolicy, RuleRun_StateSchema, EventTrigger_Comparison, EventTrigger_ComparisonSchema } from "../../../gen/tether/v1/rule_pb.js";
import { Task_StateSchema } from "../../../gen/tether/v1/task_pb.js";
import { api } from "../api.js";
import { link } from "../app.js";
import { describeCommand } from "../commands.js";
import { CommandEditor, emptyDraft } from "../components/command-editor.js";
import { browserZone, CronEditor } from "../components/cron-editor.js";
import { ErrorBanner, FieldError } from "../components/error-banner.js";
import { fieldsUnder, type ReadableError, readable } from "../errors.js";
import { deviceId, enumName, timeText } from "../format.js";
import { usePolling } from "../hooks.js";
import { metricsOf, type CommandDraft, PRODUCTS, productByProductKind } from "../products/index.js";
import { navigate } from "../router.js";
import { EnumOptions } from "../components/enum-options.js";

/** A task's priority when none is set; the choices run from 0 (lowest) to 9 (highest). */
const DEFAULT_PRIORITY = 5;
const PRIORITIES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

const ruleId = (name: string) => name.replace(/^rules\//, "");

function triggerText(r: Rule): string {
  switch (r.trigger.case) {
    case "cron":
      return `cron ${r.trigger.value.expression} (${r.trigger.value.timeZone || "UTC"})`;
    case "oneShotTime":
      return `once at ${timeText(r.trigger.value)}`;
    case "eventTrigger": {
      const e = r.trigger.value;
      return `when ${e.metric} ${enumName(EventTrigger_ComparisonSchema, e.comparison).toLowerCase()} ${e.threshold}`;
    }
    default:
      return "—";
  }
}

function targetText(r: Rule): string {
  if (r.target.case === "device") return deviceId(r.target.value);
  if (r.target.case === "selector") {
    const s = r.target.value;
    return `${productByProductKind(s.kind)?.core.pluralLabel ?? "devices"} with ${Object.entries(s.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}`;
  }
  if (r.target.case === "job") {
    const t = r.target.value.target;
    return `a job over ${t.case === "selector" ? t.value.filter : t.case === "devices" ? `${t.value.devices.length} device(s)` : "—"}`;
  }
  return "—";
}

/** Rules: the list, a form to create one (cron editor with server-side preview), and a rule's run history. */
export function RulesPage({ id }: { id?: string }) {
  const list = usePolling((signal) => api.rules.listRules({ pageSize: 100 }, { signal }), 5000, []);
  return (
    <section>
      <h1>Rules</h1>
      <ErrorBanner error={list.error} />
      <table className="rules">
        <thead>
          <tr>
            <th>Rule</th>
            <th>Trigger</th>
            <th>Target</th>
            <th>Command</th>
            <th>Next fire</th>
            <th>Last fire</th>
          </tr>
        </thead>
        <tbody>
          {(list.value?.rules ?? []).map((r) => (
            <tr key={r.name} data-rule={ruleId(r.name)} className={id === ruleId(r.name) ? "selected" : ""}>
              <td>
                <a href={`/rules/${ruleId(r.name)}`} onClick={link(`/rules/${ruleId(r.name)}`)}>
                  {r.displayName || ruleId(r.name)}
                </a>
                {r.paused && <span className="badge">paused</span>}
              </td>
              <td className="mono">{triggerText(r)}</td>
              <td>{targetText(r)}</td>
              <td>{describeCommand(r.target.case === "job" ? r.target.value.command : r.command)}</td>
              <td>{r.paused ? "—" : timeText(r.nextFireTime)}</td>
              <td>{timeText(r.lastFireTime)}</td>
            </tr>
          ))}
          {list.value?.rules.length === 0 && (
            <tr>
              <td colSpan={6} className="muted">
                No rules yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {id ? <RuleDetail id={id} onChanged={list.reload} /> : <CreateRule onCreated={(r) => (list.reload(), navigate(`/rules/${ruleId(r.name)}`))} />}
    </section>
  );
}

function RuleDetail({ id, onChanged }: { id: string; onChanged(): void }) {
  const rule = usePolling((signal) => api.rules.getRule({ name: `rules/${id}` }, { signal }), 5000, [id]);
  const runs = usePolling((signal) => api.rules.listRuleRuns({ parent: `rules/${id}`, pageSize: 50 }, { signal }), 3000, [id]);
  const [error, setError] = useState<ReadableError>();
  const act = async (f: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await f();
      rule.reload();
      onChanged();
    } catch (err) {
      setError(readable(err));
    }
  };
  const r = rule.value;
  return (
    <section className="panel">
      <p>
        <a href="/rules" onClick={link("/rules")}>
          + New rule
        </a>
      </p>
      <ErrorBanner error={rule.error ?? error} />
      {r && (
        <>
          <h2>
            {r.displayName || id} {r.paused && <span className="badge">paused</span>}
          </h2>
          <p>
            {triggerText(r)} → {describeCommand(r.target.case === "job" ? r.target.value.command : r.command)} on {targetText(r)}
            <span className="muted"> · task priority {(r.target.case === "job" ? r.target.value.taskPriority : r.taskPriority) ?? DEFAULT_PRIORITY}</span>
          </p>
          <div className="actions">
            {r.paused ? (
              <button type="button" onClick={() => void act(() => api.rules.resumeRule({ name: r.name }))}>
                Resume
              </button>
            ) : (
              <button type="button" onClick={() => void act(() => api.rules.pauseRule({ name: r.name }))}>
                Pause
              </button>
            )}
            <button
              type="button"
              className="danger"
              onClick={() =>
                confirm(`Delete rule ${id}?`) && void act(async () => (await api.rules.deleteRule({ name: r.name, etag: r.etag }), navigate("/rules")))
              }
            >
              Delete
            </button>
          </div>
        </>
      )}
      <h3>Runs</h3>
      <ErrorBanner error={runs.error} />
      <table className="runs">
        <thead>
          <tr>
            <th>Occurrence</th>
            <th>Fired</th>
            <th>Outcome</th>
            <th>Tasks</th>
          </tr>
        </thead>
        <tbody>
          {(runs.value?.runs ?? []).map((run) => (
            <tr key={run.name} data-run-state={enumName(RuleRun_StateSchema, run.state)}>
              <td>{timeText(run.occurrenceTime)}</td>
              <td>{timeText(run.fireTime)}</td>
              <td>
                <span className="badge">{enumName(RuleRun_StateSchema, run.state)}</span> {run.stateReason}
                {run.missedOccurrences > 0 && <span className="muted"> ({run.missedOccurrences} missed)</span>}
              </td>
              <td>
                {run.job && <span data-run-job={run.job}>{run.job}</span>}
                {run.targets.map((t) => (
                  <div key={t.device}>
                    <a href={`/${t.device}`} onClick={link(`/${t.device}`)}>
                      {deviceId(t.device)}
                    </a>{" "}
                    {t.taskState ? (
                      <span className={`badge state-${enumName(Task_StateSchema, t.taskState).toLowerCase()}`}>{enumName(Task_StateSchema, t.taskState)}</span>
                    ) : null}
                    {t.error && <span className="task-error"> {t.error}</span>}
                  </div>
                ))}
              </td>
            </tr>
          ))}
          {runs.value?.runs.length === 0 && (
            <tr>
              <td colSpan={4} className="muted">
                Not fired yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

type TriggerKind = "cron" | "once" | "event";

function CreateRule({ onCreated }: { onCreated(r: Rule): void }) {
  const [rid, setRid] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [trigger, setTrigger] = useState<TriggerKind>("cron");
  const [cron, setCron] = useState({ expression: "0 30 7 * * 1-5", timeZone: browserZone });
  const [once, setOnce] = useState("");
  const [event, setEvent] = useState({ metric: "", comparison: EventTrigger_Comparison.LT, threshold: 0, forS: 0, cooldownS: 300 });
  const [targetKind, setTargetKind] = useState<"device" | "selector">("device");
  const [device, setDevice] = useState("");
  // The product decides the selector's kind, the command's form and its default.
  const [product, setProduct] = useState(PRODUCTS[0]!);
  const [labels, setLabels] = useState("");
  const [draft, setDraft] = useState<CommandDraft>(() => emptyDraft(product));
  const [misfire, setMisfire] = useState(Rule_MisfirePolicy.SKIP);
  const [priority, setPriority] = useState(DEFAULT_PRIORITY);
  const [error, setError] = useState<ReadableError>();
  const [busy, setBusy] = useState(false);
  const fields = error?.fields ?? {};

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const labelMap = Object.fromEntries(
        labels
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean)
          .map((p) => p.split("=", 2).map((s) => s.trim()) as [string, string]),
      );
      const created = await api.rules.createRule({
        ruleId: rid,
        rule: {
          displayName,
          trigger:
            trigger === "cron"
              ? { case: "cron", value: cron }
              : trigger === "once"
                ? { case: "oneShotTime", value: timestampFromDate(once ? new Date(once) : new Date(Number.NaN)) }
                : {
                    case: "eventTrigger",
                    value: {
                      metric: event.metric,
                      comparison: event.comparison,
                      threshold: event.threshold,
                      forDuration: { seconds: BigInt(event.forS) },
                      cooldown: { seconds: BigInt(event.cooldownS) },
                    },
                  },
          target:
            targetKind === "device"
              ? { case: "device", value: `devices/${device}` }
              : { case: "selector", value: { kind: product.core.productKind, labels: labelMap } },
          command: product.buildCommand(draft),
          taskPriority: priority,
          misfirePolicy: misfire,
        },
      });
      onCreated(created);
    } catch (err) {
      setError(readable(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="panel rule-form" onSubmit={submit}>
      <h2>New rule</h2>
      <div className="row">
        <label>
          Id
          <input name="rule-id" value={rid} onChange={(e) => setRid(e.target.value)} placeholder="office-lights-on" />
          <FieldError messages={fieldsUnder(fields, "rule_id")} />
        </label>
        <label>
          Display name
          <input name="display-name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          <FieldError messages={fieldsUnder(fields, "rule.display_name")} />
        </label>
      </div>
      <fieldset>
        <legend>When</legend>
        <div className="row">
          {(["cron", "once", "event"] as const).map((t) => (
            <label className="inline" key={t}>
              <input type="radio" name="trigger" checked={trigger === t} onChange={() => setTrigger(t)} />{" "}
              {t === "cron" ? "on a schedule" : t === "once" ? "once" : "on a condition"}
            </label>
          ))}
        </div>
        {trigger === "cron" && (
          <CronEditor
            expression={cron.expression}
            timeZone={cron.timeZone}
            fields={fields}
            onChange={(expression, timeZone) => setCron({ expression, timeZone })}
          />
        )}
        {trigger === "once" && (
          <label>
            At (your local time)
            <input type="datetime-local" name="once" step={1} value={once} onChange={(e) => setOnce(e.target.value)} />
            <FieldError messages={fieldsUnder(fields, "rule.one_shot_time")} />
          </label>
        )}
        {trigger === "event" && (
          <div className="row">
            <label>
              Metric or reported field
              <input
                name="metric"
                list="rule-metrics"
                value={event.metric}
                onChange={(e) => setEvent({ ...event, metric: e.target.value })}
                placeholder={product.core.metrics[0]?.name}
              />
              <datalist id="rule-metrics">
                {metricsOf(product).map((m) => (
                  <option key={m.name} value={m.name}>
                    {m.description} ({m.unit})
                  </option>
                ))}
              </datalist>
              <FieldError messages={fieldsUnder(fields, "rule.event_trigger.metric")} />
            </label>
            <label>
              Is
              <select name="comparison" value={event.comparison} onChange={(e) => setEvent({ ...event, comparison: Number(e.target.value) })}>
                <EnumOptions of={EventTrigger_ComparisonSchema} />
              </select>
            </label>
            <label>
              Threshold
              <input type="number" name="threshold" value={event.threshold} onChange={(e) => setEvent({ ...event, threshold: Number(e.target.value) })} />
              <FieldError messages={fieldsUnder(fields, "rule.event_trigger.threshold")} />
            </label>
            <label>
              For (s)
              <input type="number" name="for" min={0} value={event.forS} onChange={(e) => setEvent({ ...event, forS: Number(e.target.value) })} />
              <FieldError messages={fieldsUnder(fields, "rule.event_trigger.for_duration")} />
            </label>
            <label>
              Cooldown (s)
              <input
                type="number"
                name="cooldown"
                min={1}
                value={event.cooldownS}
                onChange={(e) => setEvent({ ...event, cooldownS: Number(e.target.value) })}
              />
              <FieldError messages={fieldsUnder(fields, "rule.event_trigger.cooldown")} />
            </label>
          </div>
        )}
        <FieldError messages={fieldsUnder(fields, "rule.trigger")} />
      </fieldset>
      <fieldset>
        <legend>Which devices</legend>
        <div className="row">
          <label>
            Product
            <select
              name="kind"
              value={product.core.kindName}
              onChange={(e) => {
                const next = PRODUCTS.find((p) => p.core.kindName === e.target.value) ?? product;
                setProduct(next);
                setDraft(emptyDraft(next));
              }}
            >
              {PRODUCTS.map((p) => (
                <option key={p.core.kindName} value={p.core.kindName}>
                  {p.core.label}
                </option>
              ))}
            </select>
          </label>
          <label className="inline">
            <input type="radio" name="target" checked={targetKind === "device"} onChange={() => setTargetKind("device")} /> one device
          </label>
          <label className="inline">
            <input type="radio" name="target" checked={targetKind === "selector"} onChange={() => setTargetKind("selector")} /> every device with labels
          </label>
        </div>
        {targetKind === "device" ? (
          <label>
            Device id
            <input name="device" value={device} onChange={(e) => setDevice(e.target.value)} placeholder={product.exampleDeviceId} />
            <FieldError messages={fieldsUnder(fields, "rule.device")} />
          </label>
        ) : (
          <label>
            Labels
            <input name="selector-labels" value={labels} onChange={(e) => setLabels(e.target.value)} placeholder="room=office, floor=2" />
            <FieldError messages={fieldsUnder(fields, "rule.selector")} />
          </label>
        )}
        <FieldError messages={fieldsUnder(fields, "rule.target")} />
      </fieldset>
      <fieldset>
        <legend>Do</legend>
        <CommandEditor product={product} draft={draft} onChange={setDraft} />
        <FieldError messages={fieldsUnder(fields, "rule.command")} />
        <label title="Queued tasks go out to a device highest priority first; a priority never reorders tasks already sent">
          Task priority
          <select name="task-priority" value={priority} onChange={(e) => setPriority(Number(e.target.value))}>
            {PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {p === 0 ? "0 (lowest)" : p === 9 ? "9 (highest)" : p === DEFAULT_PRIORITY ? `${p} (default)` : p}
              </option>
            ))}
          </select>
          <FieldError messages={fieldsUnder(fields, "rule.task_priority")} />
        </label>
        <label>
          After downtime
          <select name="misfire" value={misfire} onChange={(e) => setMisfire(Number(e.target.value))}>
            <option value={Rule_MisfirePolicy.SKIP}>skip missed occurrences</option>
            <option value={Rule_MisfirePolicy.FIRE_ONCE}>fire once for the latest missed occurrence</option>
          </select>
        </label>
      </fieldset>
      <ErrorBanner error={error} showFields />
      <button type="submit" disabled={busy}>
        Create rule
      </button>
    </form>
  );
}
