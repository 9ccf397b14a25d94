import type { Job } from "../../../gen/tether/v1/job_pb.js";
import type { Task } from "../../../gen/tether/v1/task_pb.js";
import { NotFoundError } from "../errors.js";
import type { ChangeFeed } from "../ports/index.js";
import { jobName } from "./job-name.js";
import { isTerminalJob, type JobView, toJobProto } from "./job-record.js";
import { countsOf } from "./job-rollout.js";

/** At most this many updates a second per stream: a job of 100,000 executions changes constantly. */
const MIN_INTERVAL_MS = 250;
/** Re-read at least this often even without a local notification (changes made by other replicas). */
const POLL_MS = 2000;

export interface WatchJobOptions {
  id: string;
  read: () => Promise<JobView | undefined>;
  jobFeed: ChangeFeed<string>;
  taskFeed: ChangeFeed<Task>;
  signal: AbortSignal;
}

/**
 * Streams a job's progress: the job now, then again whenever it or one of its executions changed
 * (coalesced to at most 4 updates a second), and only when what the caller sees changed. Ends
 * once the job has ended and none of its executions is still open: nothing can change after that.
 */
export async function* watchJob(o: WatchJobOptions): AsyncGenerator<Job> {
  const name = jobName(o.id);
  let dirty = true;
  let wake: (() => void) | undefined;
  const poke = () => {
    dirty = true;
    wake?.();
  };
  const offJobs = o.jobFeed.subscribe((id) => id === o.id && poke());
  const offTasks = o.taskFeed.subscribe((t) => t.job === name && poke());
  o.signal.addEventListener("abort", poke);
  let last = "";
  try {
    while (!o.signal.aborted) {
      if (!dirty) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, POLL_MS);
        });
        wake = undefined;
        if (o.signal.aborted) break;
      }
      dirty = false;
      const started = Date.now();
      const view = await o.read();
      if (!view) throw new NotFoundError(name);
      const job = toJobProto(view);
      // update_time moves only with the state; the progress carries the rest.
      const key = JSON.stringify([job.state, job.stateReason, job.progress], (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x));
      if (key !== last) {
        last = key;
        yield job;
      }
      if (isTerminalJob(view.job.state) && countsOf(view.byState).open === 0 && !view.job.cancelInFlight) return;
      const rest = MIN_INTERVAL_MS - (Date.now() - started);
      if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    }
  } finally {
    offJobs();
    offTasks();
    o.signal.removeEventListener("abort", poke);
  }
}
