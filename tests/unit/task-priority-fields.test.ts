import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { DeviceSchema } from "../../gen/tether/v1/device_pb.js";
import { JobSchema } from "../../gen/tether/v1/job_pb.js";
import { RuleSchema } from "../../gen/tether/v1/rule_pb.js";
import { CreateTaskRequestSchema } from "../../gen/tether/v1/task_service_pb.js";
import { InvalidArgumentError, Violations } from "../../src/core/errors.js";
import { taskForJob } from "../../src/core/jobs/job-tasks.js";
import { parseJob } from "../../src/core/jobs/job-validation.js";
import type { RuleRecord } from "../../src/core/rules/rule-record.js";
import { toRuleProto } from "../../src/core/rules/rule-record.js";
import { taskForRule } from "../../src/core/rules/rule-tasks.js";
import { applyRuleMask } from "../../src/core/rules/rule-update-mask.js";
import { parseRule } from "../../src/core/rules/rule-validation.js";
import { DEFAULT_PRIORITY, parsePriority } from "../../src/core/tasks/task-record.js";
import { buildTask } from "../../src/core/tasks/task-request.js";

// Where a task's priority comes from: CreateTask's task.priority, a rule's task_priority, a job's
// task_priority (a job rule's template's): each validated under its own field, 5 when unset.

const now = new Date("2026-06-01T10:00:00Z");
const brightness = (n: number) => ({ kind: { case: "led" as const, value: { action: { case: "setBrightness" as const, value: n } } } });
const devicesTarget = { case: "devices" as const, value: { devices: ["devices/a"] } };
type RuleInit = MessageInitShape<typeof RuleSchema>;

function rule(init: RuleInit) {
  const v = new Violations();
  const spec = parseRule(create(RuleSchema, init), "rule", v, { now, checkFuture: true });
  return { spec, errors: Object.fromEntries(v.list.map((x) => [x.field, x.description])) };
}
const deviceRule = (taskPriority?: number): RuleInit => ({
  trigger: { case: "oneShotTime", value: timestampFromDate(new Date(now.getTime() + 60_000)) },
  target: { case: "device", value: "devices/a" },
  command: brightness(10),
  taskPriority,
});
const jobRule = (template: MessageInitShape<typeof JobSchema>, taskPriority?: number): RuleInit => ({
  trigger: { case: "cron", value: { expression: "0 0 2 * * *" } },
  target: { case: "job", value: template },
  taskPriority,
});
const REFUSED = "must be 0 (lowest) to 9 (highest); unset means 5";

describe("parsePriority", () => {
  it("takes 0 to 9, reads unset as 5 and refuses more under the field it is given", () => {
    const v = new Violations();
    expect([undefined, 0, 9].map((p) => parsePriority(p, "x.priority", v))).toEqual([DEFAULT_PRIORITY, 0, 9]);
    expect(v.list).toEqual([]);
    parsePriority(10, "x.priority", v);
    expect(v.list).toEqual([{ field: "x.priority", description: REFUSED }]);
  });
});

describe("CreateTask's task.priority", () => {
  const device = create(DeviceSchema, { kind: { case: "led", value: {} } });
  const build = (priority?: number) =>
    buildTask(create(CreateTaskRequestSchema, { parent: "devices/a", task: { command: brightness(1), priority } }), device, "a", now, "users/admin");

  it("is 5 unset, as given otherwise, and 12 is INVALID_ARGUMENT on task.priority", () => {
    expect([build().priority, build(0).priority, build(9).priority]).toEqual([5, 0, 9]);
    const err = (() => {
      try {
        build(12);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).violations).toEqual([{ field: "task.priority", description: REFUSED }]);
  });
});

describe("a rule's task_priority", () => {
  it("is the priority of the tasks a device or selector rule fires; unset is 5", () => {
    expect(rule(deviceRule(8)).spec?.taskPriority).toBe(8);
    expect(rule(deviceRule(0)).spec?.taskPriority).toBe(0);
    expect(rule(deviceRule()).spec?.taskPriority).toBe(5);
  });

  it("above 9 is refused under rule.task_priority", () => {
    const { spec, errors } = rule(deviceRule(10));
    expect(spec).toBeUndefined();
    expect(errors).toEqual({ "rule.task_priority": REFUSED });
  });

  it("must be unset for a job target, whose template carries job.task_priority, checked as CreateJob checks it", () => {
    expect(rule(jobRule({ command: brightness(1), target: devicesTarget }, 3)).errors).toEqual({
      "rule.task_priority": "must be unset for a job target: set job.task_priority",
    });
    expect(rule(jobRule({ command: brightness(1), target: devicesTarget, taskPriority: 12 })).errors).toEqual({ "rule.job.task_priority": REFUSED });
    const { spec } = rule(jobRule({ command: brightness(1), target: devicesTarget, taskPriority: 2 }));
    expect(spec?.target.kind === "job" && spec.target.template.taskPriority).toBe(2);
  });
});

describe("a job's task_priority", () => {
  const job = (taskPriority?: number) => {
    const v = new Violations();
    const spec = parseJob(create(JobSchema, { command: brightness(1), target: devicesTarget, taskPriority }), v, now);
    return { spec, errors: v.list };
  };

  it("is each execution's priority, 5 when unset, and above 9 refused under job.task_priority", () => {
    expect(job(9).spec?.taskPriority).toBe(9);
    expect(job().spec?.taskPriority).toBe(5);
    expect(job(10)).toEqual({ spec: undefined, errors: [{ field: "job.task_priority", description: REFUSED }] });
  });

  it("is the priority of the task the job creates on a device", () => {
    const spec = job(9).spec!;
    const record = { ...spec, id: "j", uid: "00000000-0000-0000-0000-000000000000" } as Parameters<typeof taskForJob>[0];
    expect(taskForJob(record, "a", now).priority).toBe(9);
  });
});

describe("rule records", () => {
  const record = (init: RuleInit): RuleRecord => ({
    ...rule(init).spec!,
    id: "r",
    uid: "00000000-0000-0000-0000-000000000000",
    paused: false,
    createTime: now,
    updateTime: now,
    revision: 1,
    creator: "users/admin",
  });

  it("a fired task carries the rule's priority", () => {
    expect(taskForRule(record(deviceRule(2)), "a", now, now).priority).toBe(2);
  });

  it("the proto shows task_priority for device rules, and leaves it to the template for job rules", () => {
    expect(toRuleProto(record(deviceRule(7))).taskPriority).toBe(7);
    expect(toRuleProto(record(deviceRule())).taskPriority).toBe(5);
    const viaJob = toRuleProto(record(jobRule({ command: brightness(1), target: devicesTarget, taskPriority: 1 })));
    expect(viaJob.taskPriority).toBeUndefined();
    expect(viaJob.target.case === "job" && viaJob.target.value.taskPriority).toBe(1);
  });
});

describe("UpdateRule's task_priority path", () => {
  const stored = () => create(RuleSchema, deviceRule(3));

  it("sets it, and resets it to the default when the request leaves it unset", () => {
    const target = stored();
    expect(applyRuleMask(["task_priority"], create(RuleSchema, { taskPriority: 9 }), target)).toEqual({ reschedule: false });
    expect(target.taskPriority).toBe(9);
    applyRuleMask(["task_priority"], create(RuleSchema, {}), target);
    expect(target.taskPriority).toBeUndefined();
  });

  it("is implied by an empty mask when the request sets it (0 included), and changes nothing else", () => {
    const target = stored();
    applyRuleMask([], create(RuleSchema, { taskPriority: 0 }), target);
    expect(target.taskPriority).toBe(0);
    expect(target.command).toEqual(stored().command);
  });

  it("has no subfields, and is listed among the updatable fields", () => {
    const fails = (paths: string[]) => {
      try {
        applyRuleMask(paths, create(RuleSchema, { taskPriority: 1 }), stored());
      } catch (e) {
        return (e as InvalidArgumentError).violations.map((x) => x.description);
      }
      return [];
    };
    expect(fails(["task_priority.value"])).toEqual(['"task_priority.value": has no subfields']);
    expect(fails(["priority"])[0]).toMatch(/^"priority": is not an updatable field \(.*task_priority.*\)$/);
  });
});
