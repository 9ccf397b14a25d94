import type { Role } from "../access/roles.js";

/** One stored share, as loaded for rights resolution. */
export interface GrantView {
  targetKind: "device" | "selector";
  /** A device id or a selector text. */
  target: string;
  role: Role;
}

/** What the rights resolver needs to know about a user, loaded in one go. */
export interface UserRights {
  /** False for a name with no user row (e.g. a certificate CN never registered). */
  exists: boolean;
  admin: boolean;
  groups: string[];
  /** Grants to the user and to each of their groups. */
  grants: GrantView[];
}

/** The port that loads a user's rights (PostgreSQL adapter in `src/store/grant-store.ts`). */
export interface RightsRepository {
  load(user: string): Promise<UserRights>;
}

/** Published on every change of users, groups, memberships or grants; `user` undefined = anyone. */
export interface RightsChange {
  user?: string;
}
