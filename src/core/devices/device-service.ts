import { randomUUID } from "node:crypto";
import { clone, create, equals } from "@bufbuild/protobuf";
import type { Message } from "@bufbuild/protobuf";
import { type Device, DeviceSchema } from "../../../gen/tether/v1/device_pb.js";
import {
  type CountDevicesRequest,
  type CountDevicesResponse,
  CountDevicesResponseSchema,
  type CreateDeviceRequest,
  type DeleteDeviceRequest,
  type ListDevicesRequest,
  type ListDevicesResponse,
  type UpdateDeviceRequest,
} from "../../../gen/tether/v1/device_service_pb.js";
import type { TelemetrySample } from "../../../gen/tether/v1/telemetry_pb.js";
import { type Access, authorize } from "../access/access.js";
import { metaOf } from "../access/device-meta.js";
import type { Clock } from "../clock.js";
import { AbortedError, InvalidArgumentError, NotFoundError, PermissionDeniedError, Violations } from "../errors.js";
import { decodePageToken, encodePageToken, resolvePageSize } from "../page-token.js";
import { kindNameList, productByCase } from "../products/index.js";
import { parseDeviceFilter } from "./device-filter.js";
import { COUNT_MAX_GROUPS, parseGroupBy, sortGroups } from "./device-count.js";
import { deviceName, generateDeviceId, isValidDeviceId, parseDeviceName, truncate } from "./device-name.js";
import type { DeviceRepository } from "../ports/device-repository.js";
import { resolveUpdateMask } from "./device-update-mask.js";
import { validateDeviceFields } from "./device-validation.js";
import { checkOwner, type UserExists } from "./device-owner.js";
import { deletedDevice } from "./device-watch.js";
import type { ChangeFeed } from "../ports/index.js";
import { RevocationReason } from "../../../gen/tether/v1/certificate_pb.js";
import type { ProvisioningRepository } from "../ports/certificates.js";
import { reservedIdProblem } from "../reserved-ids.js";
import type { DeletedDevice } from "../ports/device-repository.js";

export interface DeviceServiceDeps {
  devices: DeviceRepository;
  clock: Clock;
  /** Called after a committed change of a device's desired state, to send it to the device. */
  onDesiredStateChanged?: (deviceId: string) => void;
  /** The latest telemetry of a device, shown on GetDevice. */
  latestTelemetry?: (deviceId: string) => Promise<TelemetrySample[]>;
  /** Where committed creates, updates and deletions are announced (WatchDevices, event rules). */
  feed?: ChangeFeed<Device>;
  /**
   * Provisioning templates' namespace: a device id may not be a template id, and only an admin
   * may register an id a template hands out (its prefix).
   */
  templates?: Pick<ProvisioningRepository, "templateFor">;
  /**
   * Called after a committed deletion with the certificates it revoked: announce them (brokers
   * and APIs of every replica cut their sessions) and rewrite the CRL.
   */
  onCertificatesRevoked?: (deviceId: string, revoked: DeletedDevice["revoked"]) => Promise<void>;
  /** Whether a user exists: an owner must be one (see device-owner.ts). */
  userExists: UserExists;
}

export type DeviceService = ReturnType<typeof createDeviceService>;

/**
 * The registry's use cases: validation, naming, etags and field masks. Storage is behind a port.
 * Every call takes the caller's Access: reads need viewer, desired state operator, metadata and
 * delete owner (see core/access/roles.ts); lists are scoped in the query.
 */
export function createDeviceService({
  devices,
  clock,
  onDesiredStateChanged,
  latestTelemetry,
  feed,
  templates,
  onCertificatesRevoked,
  userExists,
}: DeviceServiceDeps) {
  async function getStored(id: string, access?: Access) {
    const stored = await devices.get(id);
    if (!stored) throw new NotFoundError(deviceName(id));
    if (access) authorize(access, "device.read", metaOf(stored.device));
    return stored;
  }

  return {
    async createDevice(access: Access, req: CreateDeviceRequest): Promise<Device> {
      const input = req.device;
      if (!input) throw InvalidArgumentError.field("device", "is required");
      // The creator owns what they create; only admins register devices for someone else, and
      // an explicit owner must be an existing user.
      const owner = input.owner !== "" || access.all ? input.owner : access.caller.user;
      if (input.owner !== "") await checkOwner(access, input.owner, undefined, userExists);
      const v = new Violations();
      if (req.deviceId !== "" && !isValidDeviceId(req.deviceId)) {
        v.add("device_id", `"${truncate(req.deviceId)}" must be 1-63 lowercase letters, digits or hyphens, starting with a letter`);
      } else if (req.deviceId !== "") {
        const reserved = reservedIdProblem(req.deviceId);
        if (reserved) v.add("device_id", reserved);
      }
      if (input.kind.case === undefined) v.add("device.kind", `is required: set ${kindNameList()}`);
      validateDeviceFields(input, "device", v);
      v.throwIfAny();
      if (req.deviceId !== "" && templates) {
        const t = await templates.templateFor(req.deviceId);
        if (t?.exact)
          throw InvalidArgumentError.field(
            "device_id",
            `"${req.deviceId}" is the id of provisioningTemplates/${t.templateId}: device ids and template ids are disjoint`,
          );
        // Taking an id a template will hand out would block (or pre-empt) that device's provisioning.
        if (t && !access.all)
          throw new PermissionDeniedError(
            `device ids starting with "${t.prefix}" are handed out by provisioningTemplates/${t.templateId}: only an admin may register one by hand`,
          );
      }
      const product = productByCase(input.kind.case!);
      // Reported state is output only: a client cannot claim what the device reports.
      const desired = (input.kind.value as { desired?: Message }).desired;
      const value = create(product.schema, desired ? { desired } : {});
      const id = req.deviceId || generateDeviceId(product.kindName);
      const device = create(DeviceSchema, {
        name: deviceName(id),
        uid: randomUUID(),
        displayName: input.displayName,
        labels: input.labels,
        owner,
        firmwareVersion: input.firmwareVersion,
        deliveryPolicy: input.deliveryPolicy,
        kind: { case: product.case, value } as Device["kind"],
      });
      const created = (await devices.insert(device, clock.now())).device;
      feed?.publish(created);
      return created;
    },

    async getDevice(access: Access, name: string): Promise<Device> {
      const id = parseDeviceName(name);
      const { device } = await getStored(id, access);
      if (latestTelemetry) device.latestTelemetry = await latestTelemetry(id);
      return device;
    },

    async listDevices(access: Access, req: ListDevicesRequest): Promise<ListDevicesResponse> {
      const limit = resolvePageSize(req.pageSize);
      const filter = parseDeviceFilter(req.filter);
      const afterId = decodePageToken(req.pageToken, `devices|${req.filter}`);
      // One extra row tells whether another page exists without a COUNT.
      const rows = await devices.list({ filter, scope: access.scope(), afterId, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const nextPageToken = rows.length > limit && last ? encodePageToken(parseDeviceName(last.name), `devices|${req.filter}`) : "";
      return { $typeName: "tether.v1.ListDevicesResponse", devices: page, nextPageToken };
    },

    async countDevices(access: Access, req: CountDevicesRequest): Promise<CountDevicesResponse> {
      const filter = parseDeviceFilter(req.filter);
      const groupBy = parseGroupBy(req.groupBy);
      const { total, groups } = await devices.count({ filter, scope: access.scope(), groupBy, limit: COUNT_MAX_GROUPS });
      const sorted = sortGroups(groups, groupBy);
      const inGroups = sorted.reduce((n, g) => n + g.count, 0);
      return create(CountDevicesResponseSchema, {
        totalCount: BigInt(total),
        groups: sorted.map((g) => ({ value: g.value, count: BigInt(g.count) })),
        otherCount: BigInt(groupBy ? total - inGroups : 0),
      });
    },

    async updateDevice(access: Access, req: UpdateDeviceRequest): Promise<Device> {
      const input = req.device;
      if (!input) throw InvalidArgumentError.field("device", "is required");
      const id = parseDeviceName(input.name, "device.name");
      const stored = await getStored(id, access);
      if (input.etag !== "" && input.etag !== stored.device.etag) {
        throw new AbortedError(`etag mismatch: ${deviceName(id)} was changed since it was read; re-read it and retry`);
      }
      const product = productByCase(stored.device.kind.case!);
      const mask = resolveUpdateMask(req.updateMask?.paths ?? [], input, product);
      // Desired state is operating the device; anything else is configuring it (owner).
      const meta = metaOf(stored.device);
      if ([...mask.topLevel].some((p) => !p.endsWith(".desired"))) authorize(access, "device.configure", meta);
      if ([...mask.topLevel].some((p) => p.endsWith(".desired"))) authorize(access, "device.control", meta);
      const next = clone(DeviceSchema, stored.device);
      mask.apply(input, next);
      // Ownership moves only by an admin or the owner, only to an existing user, never to nobody.
      if (mask.topLevel.has("owner")) await checkOwner(access, next.owner, stored.device.owner, userExists);
      const v = new Violations();
      validateDeviceFields(next, "device", v, mask.topLevel);
      v.throwIfAny();
      const oldDesired = (stored.device.kind.value as { desired?: Message }).desired;
      const newDesired = (next.kind.value as { desired?: Message }).desired;
      const desiredChanged = !equals(
        product.desiredSchema,
        (oldDesired ?? create(product.desiredSchema)) as never,
        (newDesired ?? create(product.desiredSchema)) as never,
      );
      const updated = await devices.update(next, stored.revision, { desiredChanged, now: clock.now() });
      if (updated) {
        feed?.publish(updated.device);
        if (desiredChanged) onDesiredStateChanged?.(id);
        return updated.device;
      }
      await getStored(id); // NOT_FOUND if it was deleted meanwhile
      throw new AbortedError(`${deviceName(id)} was changed concurrently; re-read it and retry`);
    },

    async deleteDevice(access: Access, req: DeleteDeviceRequest): Promise<void> {
      const id = parseDeviceName(req.name);
      const stored = await devices.get(id);
      // A device the caller cannot see is, to them, a missing device.
      if (!stored || (!access.all && access.roleOn(metaOf(stored.device)) === undefined)) {
        if (req.allowMissing) return;
        throw new NotFoundError(deviceName(id));
      }
      authorize(access, "device.delete", metaOf(stored.device));
      if (req.etag !== "" && req.etag !== stored.device.etag) {
        throw new AbortedError(`etag mismatch: ${deviceName(id)} was changed since it was read; re-read it and retry`);
      }
      const now = clock.now();
      const deleted = await devices.delete(id, {
        expectedRevision: req.etag !== "" ? stored.revision : undefined,
        now,
        revocationReason: RevocationReason.CESSATION_OF_OPERATION,
      });
      if (deleted) {
        feed?.publish(deletedDevice(stored.device, now));
        // The old key must not speak for whoever re-creates this id: its certificates are revoked (committed above).
        await onCertificatesRevoked?.(id, deleted.revoked);
      }
      if (!deleted && !req.allowMissing) {
        if (req.etag !== "") throw new AbortedError(`${deviceName(id)} was changed concurrently; re-read it and retry`);
        throw new NotFoundError(deviceName(id));
      }
    },
  };
}
