import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useState } from "react";
import { type Task, Task_State, Task_StateSchema } from "../../../gen/tether/v1/task_pb.js";
import { api } from "../api.js";
import { describeCommand, describeResult } from "../commands.js";
import { type ReadableError, readable } from "../errors.js";
import { enumName, timeText } from "../format.js";
import { usePolling, useStream } from "../hooks.js";
import { ErrorBanner } from "./error-banner.js";

/** What a task created without a priority has (the server always sends one; older servers none). */
const DEFAULT_PRIORITY = 5;

const OPEN = new Set([Task_State.QUEUED, Task_State.SENT, Task_State.DELIVERED, Task_State.RUNNING]);

const time = (t: Task) => (t.createTime ? timestampDate(t.createTime).getTime() : 0);
const updated = (t: Task) => (t.updateTime ? timestampDate(t.updateTime).getTime() : 0);

/**
 * A device's recent tasks, live: the last page from ListTasks, then every change WatchTasks sends
 * (progress, results, errors). A task that changes is updated in place, by name, and a stale event
 * (an older `update_time`) never overwrites a newer one.
 */
export function TasksPanel({ device, created, onChange }: { device: string; created: Task[]; onChange?: () => void }) {
  const [tasks, setTasks] = useState<Map<string, Task>>(new Map());
  const [cancelError, setCancelError] = useState<ReadableError>();
  const upsert = (list: Task[]) =>
    setTasks((prev) => {
      const next = new Map(prev);
      for (const t of list) {
        const cur = next.get(t.name);
        if (!cur || updated(cur) <= updated(t)) next.set(t.name, t);
      }
      return next;
    });
  const initial = usePolling(
    async (signal) => {
      const res = await api.tasks.listTasks({ parent: `devices/${device}`, pageSize: 20 }, { signal });
      upsert(res.tasks);
      return res.tasks.length;
    },
    0,
    [device],
  );
  const watch = useStream(
    (signal) => api.tasks.watchTasks({ name: `devices/${device}`, sendInitial: true }, { signal }),
    (m) => {
      if (!m.task) return;
      upsert([m.task]);
      // A task's progress or end usually comes with a new reported state: re-read the device now.
      onChange?.();
    },
    [device],
  );
  // Tasks this page just created show at once, before the watch reports them.
  const all = new Map(tasks);
  for (const t of created) if (!all.has(t.name)) all.set(t.name, t);
  const list = [...all.values()].sort((a, b) => time(b) - time(a)).slice(0, 50);

  const cancel = async (name: string) => {
    setCancelError(undefined);
    try {
      upsert([await api.tasks.cancelTask({ name, reason: "canceled from the console" })]);
    } catch (err) {
      setCancelError(readable(err));
    }
  };
  return (
    <section className="panel">
      <h2>Tasks</h2>
      <ErrorBanner error={initial.error ?? watch.error ?? cancelError} />
      {list.length === 0 ? (
        <p className="muted">No tasks yet.</p>
      ) : (
        <table className="tasks">
          <thead>
            <tr>
              <th>Command</th>
              <th>State</th>
              <th title="0 lowest … 9 highest: queued tasks go out highest first">Priority</th>
              <th>Details</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((t) => (
              <tr key={t.name} data-task={t.name} data-state={enumName(Task_StateSchema, t.state)}>
                <td>{describeCommand(t.command)}</td>
                <td>
                  <span className={`badge state-${enumName(Task_StateSchema, t.state).toLowerCase()}`}>{enumName(Task_StateSchema, t.state)}</span>
                  {t.state === Task_State.RUNNING && t.progress && <progress max={100} value={t.progress.percent} title={`${t.progress.percent} %`} />}
                </td>
                <td className="priority">{t.priority ?? DEFAULT_PRIORITY}</td>
                <td>
                  {t.error && (
                    <span className="task-error">
                      {t.error.code}: {t.error.message}
                    </span>
                  )}
                  {!t.error && t.stateReason && <span className="muted">{t.stateReason}</span>}
                  {t.progress?.message && t.state === Task_State.RUNNING && <span className="muted"> {t.progress.message}</span>}
                  {describeResult(t.result) && <span> · {describeResult(t.result)}</span>}
                  {t.attempt > 1 && <span className="muted"> attempt {t.attempt}</span>}
                </td>
                <td className="muted">{timeText(t.createTime)}</td>
                <td>
                  {OPEN.has(t.state) && (
                    <button type="button" className="small" onClick={() => void cancel(t.name)}>
                      Cancel
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
