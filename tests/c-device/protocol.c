/*
 * The Tether device protocol written from proto/tether/device/v1/ and its device.options alone.
 * Everything lives in static memory: one decoded Downlink, one Uplink being built, one encode
 * buffer. `size protocol.o *.pb.o pb_*.o` is the protocol's cost in flash and RAM.
 */
#include "protocol.h"

#include <pb_decode.h>
#include <pb_encode.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tether/device/v1/downlink.pb.h"
#include "tether/device/v1/uplink.pb.h"

/* Largest uplink this device sends: a progress report or a result (~300 bytes), or a telemetry
 * batch of a few samples; the samples are encoded one at a time by a callback. */
#define UPLINK_BUFFER 512
/* Task ids remembered for de-duplication: a redelivered task is not executed twice. */
#define SEEN_TASKS 8

static tether_send_fn send_uplink;
static const char *firmware;
static tether_status_t status;
static tether_device_v1_Downlink down;
static tether_device_v1_Uplink up;
static uint8_t buffer[UPLINK_BUFFER];
static char seen[SEEN_TASKS][sizeof down.body.task.task_id];
static unsigned seen_next;
static unsigned message_counter;
static uint64_t report_version;
static char telemetry_id[sizeof up.message_id];

void tether_init(const char *firmware_version, tether_send_fn send) {
    firmware = firmware_version;
    send_uplink = send;
    /* Message ids: unique per boot (the time) and per message (a counter). */
    message_counter = (unsigned)time(NULL);
}

const tether_status_t *tether_status(void) { return &status; }

static google_protobuf_Timestamp now_ts(long back_s) {
    google_protobuf_Timestamp t = google_protobuf_Timestamp_init_zero;
    t.seconds = (int64_t)time(NULL) - back_s;
    return t;
}

/* Starts an uplink envelope: a fresh message id and the device clock. */
static void begin(pb_size_t body_tag) {
    memset(&up, 0, sizeof up);
    snprintf(up.message_id, sizeof up.message_id, "c-%08x", ++message_counter);
    up.has_time = true;
    up.time = now_ts(0);
    up.which_body = body_tag;
    up.max_receipt_ids = TETHER_MAX_RECEIPT_IDS; /* matters on the messages that ask for a receipt */
}

static int finish(void) {
    pb_ostream_t os = pb_ostream_from_buffer(buffer, sizeof buffer);
    if (!pb_encode(&os, tether_device_v1_Uplink_fields, &up)) {
        fprintf(stderr, "encode failed: %s\n", PB_GET_ERROR(&os));
        return -1;
    }
    return send_uplink(buffer, os.bytes_written);
}

int tether_hello(void) {
    begin(tether_device_v1_Uplink_hello_tag);
    snprintf(up.body.hello.firmware_version, sizeof up.body.hello.firmware_version, "%s", firmware);
    up.body.hello.want_pending_tasks = true;
    return finish();
}

static int report_state(void) {
    begin(tether_device_v1_Uplink_state_tag);
    up.body.state.version = ++report_version;
    up.body.state.which_kind = tether_device_v1_ReportedState_led_tag;
    up.body.state.kind.led.has_brightness = true;
    up.body.state.kind.led.brightness = status.brightness;
    up.body.state.kind.led.has_power = true;
    up.body.state.kind.led.power = status.brightness > 0;
    return finish();
}

static void apply_desired(const tether_device_v1_DesiredState *d) {
    if (d->version <= status.desired_version) return; /* older or repeated: ignore */
    status.desired_version = d->version;
    if (d->which_kind == tether_device_v1_DesiredState_led_tag && d->kind.led.has_brightness) status.brightness = d->kind.led.brightness;
    printf("desired version=%llu brightness=%u\n", (unsigned long long)d->version, status.brightness);
    report_state();
}

static bool seen_before(const char *task_id) {
    for (unsigned i = 0; i < SEEN_TASKS; i++)
        if (strcmp(seen[i], task_id) == 0) return true;
    snprintf(seen[seen_next], sizeof seen[seen_next], "%s", task_id);
    seen_next = (seen_next + 1) % SEEN_TASKS;
    return false;
}

/* Ack, progress, result: the task's whole life on the device. */
static void run_task(const tether_device_v1_TaskRequest *t) {
    char task_id[sizeof t->task_id];
    snprintf(task_id, sizeof task_id, "%s", t->task_id); /* `down` is reused by the next decode */
    if (seen_before(task_id)) return;
    uint32_t attempt = t->attempt;
    bool is_led = t->has_command && t->command.which_kind == tether_v1_Command_led_tag;
    const tether_v1_LedCommand cmd = t->command.kind.led;

    begin(tether_device_v1_Uplink_ack_tag);
    snprintf(up.body.ack.task_id, sizeof up.body.ack.task_id, "%s", task_id);
    up.body.ack.attempt = attempt;
    finish();

    begin(tether_device_v1_Uplink_progress_tag);
    snprintf(up.body.progress.task_id, sizeof up.body.progress.task_id, "%s", task_id);
    up.body.progress.percent = 50;
    snprintf(up.body.progress.message, sizeof up.body.progress.message, "applying");
    finish();

    begin(tether_device_v1_Uplink_result_tag);
    snprintf(up.body.result.task_id, sizeof up.body.result.task_id, "%s", task_id);
    if (is_led && cmd.which_action == tether_v1_LedCommand_set_brightness_tag && cmd.action.set_brightness <= 100) {
        status.brightness = cmd.action.set_brightness;
        up.body.result.which_outcome = tether_device_v1_TaskResult_success_tag;
        up.body.result.outcome.success.which_kind = tether_v1_CommandResult_led_tag;
        up.body.result.outcome.success.kind.led.has_state = true;
        up.body.result.outcome.success.kind.led.state.has_brightness = true;
        up.body.result.outcome.success.kind.led.state.brightness = status.brightness;
        if (finish() == 0) status.tasks_succeeded++;
        printf("task %s succeeded brightness=%u\n", task_id, status.brightness);
        report_state();
    } else {
        up.body.result.which_outcome = tether_device_v1_TaskResult_failed_tag;
        snprintf(up.body.result.outcome.failed.code, sizeof up.body.result.outcome.failed.code, "UNSUPPORTED");
        finish();
        printf("task %s failed: unsupported command\n", task_id);
    }
}

int tether_on_downlink(const uint8_t *payload, size_t len) {
    /* Fields marked `streamed` (certificate PEM, error text) have no callback here: skipped. */
    memset(&down, 0, sizeof down);
    pb_istream_t is = pb_istream_from_buffer(payload, len);
    if (!pb_decode(&is, tether_device_v1_Downlink_fields, &down)) {
        status.decode_errors++;
        fprintf(stderr, "downlink not decoded (%u bytes): %s\n", (unsigned)len, PB_GET_ERROR(&is));
        return -1;
    }
    status.downlinks++;
    switch (down.which_body) {
    case tether_device_v1_Downlink_desired_state_tag:
        apply_desired(&down.body.desired_state);
        break;
    case tether_device_v1_Downlink_task_tag:
        run_task(&down.body.task);
        break;
    case tether_device_v1_Downlink_cancel_tag:
        printf("cancel %s\n", down.body.cancel.task_id);
        break;
    case tether_device_v1_Downlink_receipt_tag:
        for (pb_size_t i = 0; i < down.body.receipt.message_ids_count; i++) {
            if (strcmp(down.body.receipt.message_ids[i], telemetry_id) == 0) {
                status.telemetry_receipted = true;
                printf("receipt for %s\n", telemetry_id);
            }
        }
        break;
    default:
        break; /* certificates, NoPendingTask: not used by this device */
    }
    return 0;
}

/* The samples of the batch being encoded. */
typedef struct {
    const char *metric;
    const double *values;
    unsigned n;
} batch_t;

/* TelemetryBatch.samples is streamed: one Sample struct, encoded once per sample. */
static bool encode_samples(pb_ostream_t *stream, const pb_field_iter_t *field, void *const *arg) {
    const batch_t *b = *arg;
    for (unsigned i = 0; i < b->n; i++) {
        tether_device_v1_Sample s = tether_device_v1_Sample_init_zero;
        snprintf(s.metric, sizeof s.metric, "%s", b->metric);
        s.value = b->values[i];
        s.has_time = true;
        s.time = now_ts((long)(b->n - i));
        if (!pb_encode_tag_for_field(stream, field) || !pb_encode_submessage(stream, tether_device_v1_Sample_fields, &s)) return false;
    }
    return true;
}

int tether_send_telemetry(const char *metric, const double *values, unsigned n) {
    batch_t b = {metric, values, n};
    begin(tether_device_v1_Uplink_telemetry_tag);
    up.receipt_requested = true;
    up.body.telemetry.samples.funcs.encode = encode_samples;
    up.body.telemetry.samples.arg = &b;
    snprintf(telemetry_id, sizeof telemetry_id, "%s", up.message_id);
    return finish();
}
