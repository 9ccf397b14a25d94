/**
 * The one error vocabulary of the core. The API layer maps each class to a gRPC status code;
 * messages are written for the caller and never carry internals (those go in `cause`).
 */
export abstract class TetherError extends Error {
  abstract readonly code:
    | "INVALID_ARGUMENT"
    | "NOT_FOUND"
    | "ALREADY_EXISTS"
    | "FAILED_PRECONDITION"
    | "ABORTED"
    | "RESOURCE_EXHAUSTED"
    | "PERMISSION_DENIED"
    | "UNAUTHENTICATED"
    | "DEADLINE_EXCEEDED"
    | "UNAVAILABLE";
}

/** One bad field: `field` is the request field path (`device.labels`), `description` says why. */
export interface FieldViolation {
  field: string;
  description: string;
}

export class InvalidArgumentError extends TetherError {
  override readonly name = "InvalidArgumentError";
  readonly code = "INVALID_ARGUMENT";
  constructor(readonly violations: FieldViolation[]) {
    super(violations.map((v) => `${v.field}: ${v.description}`).join("; "));
  }
  /** A shorthand for a single bad field. */
  static field(field: string, description: string): InvalidArgumentError {
    return new InvalidArgumentError([{ field, description }]);
  }
}

export class NotFoundError extends TetherError {
  override readonly name = "NotFoundError";
  readonly code = "NOT_FOUND";
  constructor(readonly resource: string) {
    super(`${resource} not found`);
  }
}

export class AlreadyExistsError extends TetherError {
  override readonly name = "AlreadyExistsError";
  readonly code = "ALREADY_EXISTS";
  constructor(readonly resource: string) {
    super(`${resource} already exists`);
  }
}

export class FailedPreconditionError extends TetherError {
  override readonly name = "FailedPreconditionError";
  readonly code = "FAILED_PRECONDITION";
}

/** A concurrent change: a stale etag or a lost optimistic-concurrency race. Retry after re-reading. */
export class AbortedError extends TetherError {
  override readonly name = "AbortedError";
  readonly code = "ABORTED";
}

export class ResourceExhaustedError extends TetherError {
  override readonly name = "ResourceExhaustedError";
  readonly code = "RESOURCE_EXHAUSTED";
  /** When the caller may try again, ms (sent as `google.rpc.RetryInfo`); unset: unknown. */
  readonly retryDelayMs?: number;
  constructor(message: string, opts: { retryDelayMs?: number } = {}) {
    super(message);
    if (opts.retryDelayMs !== undefined) this.retryDelayMs = opts.retryDelayMs;
  }
}

export class PermissionDeniedError extends TetherError {
  override readonly name = "PermissionDeniedError";
  readonly code = "PERMISSION_DENIED";
}

export class UnauthenticatedError extends TetherError {
  override readonly name = "UnauthenticatedError";
  readonly code = "UNAUTHENTICATED";
}

/** Collects field violations so a request reports every bad field at once, not just the first. */
export class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string): void {
    this.list.push({ field, description });
  }
  /** Throws InvalidArgumentError if anything was added. */
  throwIfAny(): void {
    if (this.list.length > 0) throw new InvalidArgumentError(this.list);
  }
}
