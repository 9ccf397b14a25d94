import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { JobService as JobServiceDesc } from "../../gen/tether/v1/job_service_pb.js";
import { requireAdmin } from "../core/access/access.js";
import type { JobService } from "../core/jobs/job-service.js";
import { accessOf } from "./auth.js";

/**
 * JobService over Connect/gRPC: a thin shell; validation and the rollout live in the core.
 * Jobs are fleet-wide: a selector reaches devices the caller may not see, and a job's counts
 * describe all of them, so every JobService method needs an admin (PERMISSION_DENIED otherwise).
 */
export function jobHandler(jobs: JobService): ServiceImpl<typeof JobServiceDesc> {
  const admin = (ctx: HandlerContext) => requireAdmin(accessOf(ctx), "fleet jobs");
  return {
    createJob: (req, ctx) => (admin(ctx), jobs.createJob(accessOf(ctx), req)),
    getJob: (req, ctx) => (admin(ctx), jobs.getJob(req.name)),
    listJobs: (req, ctx) => (admin(ctx), jobs.listJobs(req)),
    cancelJob: (req, ctx) => (admin(ctx), jobs.cancelJob(req)),
    pauseJob: (req, ctx) => (admin(ctx), jobs.pauseJob(req.name)),
    resumeJob: (req, ctx) => (admin(ctx), jobs.resumeJob(req.name)),
    listJobExecutions: (req, ctx) => (admin(ctx), jobs.listJobExecutions(req)),
    async *watchJob(req, ctx) {
      admin(ctx);
      for await (const job of jobs.watchJob(req.name, ctx.signal)) yield { job };
    },
  };
}
