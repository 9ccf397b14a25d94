import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";

/** Field path (as the server names it, e.g. `rule.cron.expression`) → what is wrong. */
export type FieldErrors = Record<string, string>;

/** A failed call, as the console shows it. */
export interface ReadableError {
  /** One sentence for a banner. */
  message: string;
  /** The gRPC code, for people who read logs. */
  code: string;
  /** Per-field reasons from `google.rpc.BadRequest`, shown under the inputs they concern. */
  fields: FieldErrors;
}

const HINTS: Partial<Record<Code, string>> = {
  [Code.Unauthenticated]: "You are not signed in",
  [Code.PermissionDenied]: "Not allowed",
  [Code.NotFound]: "Not found",
  [Code.AlreadyExists]: "Already exists",
  [Code.Aborted]: "Changed by someone else meanwhile; reload and try again",
  [Code.ResourceExhausted]: "Too many requests or pending tasks",
  [Code.FailedPrecondition]: "Not possible in the current state",
  [Code.DeadlineExceeded]: "Timed out",
  [Code.Unavailable]: "Tether is unreachable",
  [Code.Internal]: "Tether hit an internal error",
};

/** Turns any error from a call into a readable message plus field violations. */
export function readable(err: unknown): ReadableError {
  const ce = ConnectError.from(err);
  const fields: FieldErrors = {};
  for (const br of ce.findDetails(BadRequestSchema)) {
    for (const v of br.fieldViolations) fields[v.field] = fields[v.field] ? `${fields[v.field]}; ${v.description}` : v.description;
  }
  const code = Code[ce.code] ?? "Unknown";
  const hint = HINTS[ce.code];
  // rawMessage is the server's own sentence; the code name is added for context.
  const message =
    ce.code === Code.InvalidArgument
      ? ce.rawMessage
      : hint && !ce.rawMessage.toLowerCase().startsWith(hint.toLowerCase())
        ? `${hint}: ${ce.rawMessage}`
        : ce.rawMessage;
  return { message: message || code, code: snake(code), fields };
}

/** Violations under `prefix` (e.g. `rule.cron`), so a form can show them next to its inputs. */
export function fieldsUnder(fields: FieldErrors, prefix: string): string[] {
  return Object.entries(fields)
    .filter(([f]) => f === prefix || f.startsWith(`${prefix}.`) || f.startsWith(`${prefix}[`))
    .map(([f, d]) => (f === prefix ? d : `${f.slice(prefix.length + 1)}: ${d}`));
}

function snake(s: string): string {
  return s.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}
