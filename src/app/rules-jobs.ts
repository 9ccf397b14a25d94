import { FULL_ACCESS } from "../core/access/access.js";
import { createJobRunner } from "../core/jobs/job-runner.js";
import { createJobService } from "../core/jobs/job-service.js";
import { createEventRules } from "../core/rules/event-rules.js";
import { createRuleService } from "../core/rules/rule-service.js";
import { createScheduler } from "../core/rules/scheduler.js";
import { taskName } from "../core/tasks/task-record.js";
import type { Infrastructure } from "./infrastructure.js";
import type { Tasks } from "./tasks.js";

/**
 * Rules (scheduled and event-driven) and jobs (rollouts). Built here, started by `start()` once
 * the device link consumes uplink; the returned stop step ends them before the API closes.
 */
export function createRulesAndJobs(x: Infrastructure, t: Pick<Tasks, "announceTasks" | "tasks">, hooks: { onRulesChanged?: () => void } = {}) {
  const { config, clock, coreLog } = x;
  const { taskFeed, jobFeed, sampleFeed, deviceFeed } = x.feeds;
  const { announceTasks, tasks } = t;
  const ruleStore = x.stores.rules;
  const jobStore = x.stores.jobs;
  // Jobs: a rollout step commits its tasks QUEUED; they are announced like a rule's, but only
  // devices online at that moment are kicked (offline ones get theirs on hello, or from the
  // sweep's due-task pass): a job over 100,000 offline devices must not cost 100,000 dispatch passes.
  const jobRunner = createJobRunner({
    jobs: jobStore,
    clock,
    log: coreLog,
    tickMs: config.jobs.tickMs,
    batchSize: config.jobs.batchSize,
    rescanMs: config.jobs.rescanMs,
    onTasksCreated: announceTasks,
    onJobStepped: (id) => jobFeed.publish(id),
    cancelTask: async (deviceId, taskId, reason) => void (await tasks.cancelTask(FULL_ACCESS, taskName(deviceId, taskId), reason)),
  });
  const jobs = createJobService({ jobs: jobStore, clock, jobFeed, taskFeed, onJobsChanged: () => jobRunner.wake() });
  // Rules: tasks a rule creates are committed QUEUED by the scheduler/event engine, then announced
  // on the task feed and dispatched by the same announcer as CreateTask's.
  const scheduler = createScheduler({
    rules: ruleStore,
    clock,
    log: coreLog,
    onTasksCreated: announceTasks,
    // Job rules: the runner rolls the new jobs out.
    onJobsStarted: (ids) => {
      for (const id of ids) jobFeed.publish(id);
      jobRunner.wake();
    },
  });
  const eventRules = createEventRules({ rules: ruleStore, clock, log: coreLog, onTasksCreated: announceTasks });
  const rules = createRuleService({
    rules: ruleStore,
    devices: x.stores.devices,
    clock,
    onRulesChanged: () => {
      scheduler.wake();
      void eventRules.refresh();
      hooks.onRulesChanged?.(); // alarm rules
    },
  });
  // Event rules observe every accepted telemetry sample and every reported state.
  const unobserveSamples = sampleFeed.subscribe((s) => eventRules.observe(s.deviceId, s.metric, s.value, s.time));
  const unobserveDevices = deviceFeed.subscribe((d) => eventRules.observeDevice(d));
  return {
    rules,
    jobs,
    runJobs: () => jobRunner.runOnce(),
    async start() {
      await eventRules.start();
      scheduler.start();
      jobRunner.start();
      x.life.add({
        name: "rules and jobs",
        stop: async () => {
          unobserveSamples();
          unobserveDevices();
          await jobRunner.stop();
          await scheduler.stop();
          await eventRules.stop();
        },
      });
    },
  };
}
