import { describeWebhookRefusals, embedded } from "../helpers/webhook-suites.js";

describeWebhookRefusals(embedded);
