export * from "./app/index.js";
