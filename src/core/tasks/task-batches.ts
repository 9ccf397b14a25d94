import { createBatcher } from "../batcher.js";
import type { Clock } from "../clock.js";
import type { DeviceRepository, ReportedItem, StoredDevice } from "../ports/device-repository.js";
import type { AppliedWord, CreatedTask, NewTask, TaskRepository } from "../ports/task-repository.js";
import type { DeviceWord } from "./device-word.js";

export interface TaskBatchesDeps {
  tasks: TaskRepository;
  devices: DeviceRepository;
  clock: Clock;
  /** Flushes at once per batcher: 1 on the embedded database (one connection), more on a pool. @default 1 */
  maxFlushes?: number;
}

export type TaskBatches = ReturnType<typeof createTaskBatches>;

/**
 * The group commits of the task path (see batcher.ts): what arrives together from many callers
 * and devices is written in one statement or transaction, each item with its own outcome. Every
 * promise of the task path holds per item: the guard is in each statement, the announcements
 * follow the commit (the callers make them once their item resolved), and an item the fast
 * statement leaves out (a refusal, a late word) goes the one-at-a-time way.
 */
export function createTaskBatches({ tasks, devices, clock, maxFlushes = 1 }: TaskBatchesDeps) {
  const creates = createBatcher<NewTask, CreatedTask>({ flush: (items) => tasks.createMany(items, () => clock.now()), maxFlushes });
  const words = createBatcher<DeviceWord, AppliedWord | undefined>({ flush: (items) => tasks.applyWords(items, clock.now()), maxFlushes });
  const reports = createBatcher<ReportedItem, StoredDevice | undefined>({ flush: (items) => devices.applyReportedMany(items, clock.now()), maxFlushes });
  const reads = createBatcher<string, StoredDevice | undefined>({ flush: (ids) => devices.getMany(ids), maxFlushes });
  const all = [creates, words, reports, reads];
  return {
    /** CreateTask's store step: the task created with the others that arrived with it. */
    create: (t: NewTask): Promise<CreatedTask> => creates.submit(t),
    /** A device's ack, progress or result, applied set-based; undefined: take the lifecycle's path. */
    word: (w: DeviceWord): Promise<AppliedWord | undefined> => words.submit(w),
    /** A reported state stored set-based; undefined: nothing changed (find out why the slow way). */
    report: (r: ReportedItem): Promise<StoredDevice | undefined> => reports.submit(r),
    /** A device read with the others asked for at the same moment (one SELECT … = ANY). */
    device: (id: string): Promise<StoredDevice | undefined> => reads.submit(id),
    /** Stops taking items and waits for what was submitted (shutdown). */
    close: async (): Promise<void> => {
      await Promise.all(all.map((b) => b.close()));
    },
  };
}
