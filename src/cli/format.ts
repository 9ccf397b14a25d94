import { type DescMessage, type MessageShape, toJsonString } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Command, CommandResult } from "../../gen/tether/v1/command_pb.js";
import { productByCase } from "../core/products/index.js";
import { DEFAULT_PRIORITY } from "../core/tasks/task-record.js";

/** Renders rows as an aligned plain-text table with a header. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

/** Protobuf JSON (the canonical mapping), pretty-printed. */
export function json<D extends DescMessage>(schema: D, message: MessageShape<D>): string {
  return toJsonString(schema, message, { prettySpaces: 2 });
}

export function time(ts: Timestamp | undefined): string {
  return ts
    ? timestampDate(ts)
        .toISOString()
        .replace(/\.\d+Z$/, "Z")
    : "-";
}

/** A readable one-block description of an RPC failure, with field violations one per line. */
export function describeError(err: unknown): string {
  if (!(err instanceof ConnectError)) return err instanceof Error ? err.message : String(err);
  const violations = err.findDetails(BadRequestSchema).flatMap((br) => br.fieldViolations);
  if (violations.length === 0) return `error: ${err.rawMessage} (${codeName(err.code)})`;
  return [`error: invalid request (${codeName(err.code)})`, ...violations.map((v) => `  ${v.field}: ${v.description}`)].join("\n");
}

function codeName(code: number): string {
  const names = [
    "OK",
    "CANCELED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
  ];
  return names[code] ?? String(code);
}

/** A command in the words a user types for it (its product's), e.g. `brightness 10`, `brew latte:large`. */
export function commandText(command: Command | undefined): string {
  if (!command?.kind.case) return "-";
  return productByCase(command.kind.case).words.describe(command.kind.value);
}

/** A task's result in its product's words, e.g. `power on, brightness 40`; "-" when there is none. */
export function resultText(result: CommandResult | undefined): string {
  if (!result?.kind.case) return "-";
  return productByCase(result.kind.case).words.describeResult(result.kind.value) || "-";
}

/** A task priority as shown: unset is the default a server applies (older servers send none). */
export function priorityText(priority: number | undefined): string {
  return String(priority ?? DEFAULT_PRIORITY);
}
