/** Types of console/build.js (plain JavaScript so `npm start` checks the console without a TypeScript loader). */
export function consoleIsStale(): boolean;
export function buildConsole(opts?: { quiet?: boolean }): Promise<void>;
