import { describeWebhookDelivery, embedded } from "../helpers/webhook-suites.js";

// The suites are shared with tests/services/webhooks.test.ts, which runs them on PostgreSQL.
describeWebhookDelivery(embedded);
