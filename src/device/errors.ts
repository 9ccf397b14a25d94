/**
 * Errors a device's command handler throws to end a task with something other than success.
 *
 * The device protocol distinguishes two unhappy endings (see `TaskResult` in uplink.proto), because
 * owners and retry policies treat them differently:
 * - a *rejection* means the device did not try (machine off, invalid argument, deadline passed,
 *   canceled) — nothing physical happened, so it is safe to fix the cause and send a new task;
 * - a *failure* means the device tried and something went wrong (empty tank, jam) — something may
 *   have happened, and a machine-readable `code` lets apps and rules react without parsing text.
 *
 * Any other exception a handler throws is reported as a failure with code `INTERNAL`.
 */

/** The device refused the command without attempting it. Becomes `TaskResult.rejected`. */
export class DeviceRejection extends Error {
  override readonly name = "DeviceRejection";

  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The device tried to execute the command and failed. Becomes `TaskResult.failed`. */
export class DeviceFailure extends Error {
  override readonly name = "DeviceFailure";

  /**
   * @param code machine-readable, UPPER_SNAKE_CASE (e.g. `WATER_TANK_EMPTY`): apps and rules match on it
   * @param message human-readable, shown to the owner
   * @param details extra context as strings (e.g. `{ water_level_percent: "4" }`)
   */
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, string> = {},
  ) {
    super(message);
  }
}
