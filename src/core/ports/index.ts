/**
 * Every port of the core in one place, one file each: what core services need from the outside
 * world, implemented by the adapters (store/, bus/, link/, pki/) and wired in src/app/.
 */
export type * from "./alarm-notifications.js";
export type * from "./alarm-repository.js";
export type * from "./audit.js";
export type * from "./auth.js";
export type * from "./certificates.js";
export type * from "./change-feed.js";
export type * from "./connectivity-repository.js";
export type * from "./counters.js";
export type * from "./device-link.js";
export type * from "./device-repository.js";
export type * from "./firmware.js";
export type * from "./job-repository.js";
export type * from "./rights.js";
export type * from "./rule-repository.js";
export type * from "./task-repository.js";
export type * from "./telemetry.js";
export type * from "./uplink-intake.js";
export type * from "./webhooks.js";
