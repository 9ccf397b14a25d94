// Moved to core/uplink/ (one module per envelope); this path is kept until the import rewrite.
export * from "../uplink/uplink-processor.js";
