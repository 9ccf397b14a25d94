import { cap, type KindNames } from "../names.js";

/** proto/tether/v1/<kind>.proto: the product message, its desired and reported state, command and result. */
export function protoFile(n: KindNames): string {
  const P = n.pascal;
  return `syntax = "proto3";

package tether.v1;

// ${cap(n.aLabel)}. TODO: say what it is and what it does.
message ${P} {
  // What the owner wants. Set through UpdateDevice; Tether sends it to the
  // device until the reported state matches.
  ${P}Desired desired = 1;
  // What the device last reported. Output only: set by the device.
  ${P}Reported reported = 2;
}

// The part of ${possessive(n)} state an owner sets. Every field is optional so
// that a desired state can name only what it wants to change.
message ${P}Desired {
  // On (true) or off (false).
  optional bool power = 1;
}

// ${cap(possessive(n))} state as the device reports it.
message ${P}Reported {
  // On (true) or off (false).
  optional bool power = 1;
}

// A command ${n.aLabel} executes as a task.
message ${P}Command {
  // The one thing to do.
  oneof action {
    // Switch on (true) or off (false).
    bool set_power = 1;
  }
}

// What ${n.aLabel} reports when a command succeeded.
message ${P}Result {
  // The state after the command.
  ${P}Reported state = 1;
}
`;
}

/** `a foo bar's`. */
const possessive = (n: KindNames) => `${n.aLabel}'s`;
