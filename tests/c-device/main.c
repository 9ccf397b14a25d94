/*
 * A reference Tether device in C: Paho MQTT C (synchronous client, TLS with the device's X.509
 * certificate from Tether's CA) carrying the protocol in protocol.c. It connects, subscribes to
 * its downlink, says Hello, applies its desired state, runs tasks to SUCCEEDED, then sends a
 * telemetry batch and waits for its receipt. Exit status 0 once all of that happened.
 *
 * usage: tether-c-device URL DEVICE_ID CA_PEM CERT_PEM KEY_PEM TASKS [TIMEOUT_S]
 *   e.g. tether-c-device ssl://127.0.0.1:8883 kitchen-led ca.crt dev.crt dev.key 1
 */
#include <MQTTClient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol.h"

static MQTTClient client;
static char up_topic[128];

static int publish(const uint8_t *payload, size_t len) {
    MQTTClient_message m = MQTTClient_message_initializer;
    MQTTClient_deliveryToken token;
    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = 1;
    if (MQTTClient_publishMessage(client, up_topic, &m, &token) != MQTTCLIENT_SUCCESS) return -1;
    return MQTTClient_waitForCompletion(client, token, 10000) == MQTTCLIENT_SUCCESS ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s URL DEVICE_ID CA_PEM CERT_PEM KEY_PEM TASKS [TIMEOUT_S]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1], *device_id = argv[2];
    unsigned want_tasks = (unsigned)atoi(argv[6]);
    time_t deadline = time(NULL) + (argc > 7 ? atoi(argv[7]) : 60);
    char down_topic[128];
    snprintf(up_topic, sizeof up_topic, "tether/v1/devices/%s/up", device_id);
    snprintf(down_topic, sizeof down_topic, "tether/v1/devices/%s/down", device_id);

    /* The client id is the device id: the broker matches it against the certificate's CN. */
    if (MQTTClient_create(&client, url, device_id, MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTCLIENT_SUCCESS) return 1;
    MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
    ssl.trustStore = argv[3];
    ssl.keyStore = argv[4];
    ssl.privateKey = argv[5];
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1; /* the broker's certificate must name the host we dialled */
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    opts.ssl = &ssl;
    opts.keepAliveInterval = 30;
    opts.cleansession = 1;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    int rc = MQTTClient_connect(client, &opts);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "connect failed: %d\n", rc);
        return 1;
    }
    printf("connected\n");
    if (MQTTClient_subscribe(client, down_topic, 1) != MQTTCLIENT_SUCCESS) return 1;

    tether_init("c-device/1.0.0", publish);
    /* Subscribed first, then Hello: what Tether sends in answer finds the subscription. */
    if (tether_hello() != 0) return 1;
    fflush(stdout);

    bool telemetry_sent = false;
    const tether_status_t *st = tether_status();
    while (time(NULL) < deadline) {
        char *topic = NULL;
        int topic_len = 0;
        MQTTClient_message *msg = NULL;
        rc = MQTTClient_receive(client, &topic, &topic_len, &msg, 500);
        if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED) {
            fprintf(stderr, "receive failed: %d\n", rc);
            return 1;
        }
        if (msg) {
            tether_on_downlink(msg->payload, (size_t)msg->payloadlen);
            MQTTClient_freeMessage(&msg);
            MQTTClient_free(topic);
        }
        if (!telemetry_sent && st->desired_version > 0 && st->tasks_succeeded >= want_tasks) {
            const double values[] = {21.5, 21.75, 22.0};
            if (tether_send_telemetry("c_device_temperature", values, 3) != 0) return 1;
            telemetry_sent = true;
        }
        fflush(stdout);
        if (telemetry_sent && st->telemetry_receipted) {
            printf("done downlinks=%u decode_errors=%u\n", st->downlinks, st->decode_errors);
            MQTTClient_disconnect(client, 1000);
            MQTTClient_destroy(&client);
            return st->decode_errors == 0 ? 0 : 1;
        }
    }
    fprintf(stderr, "timed out: desired_version=%llu tasks=%u receipt=%d\n", (unsigned long long)st->desired_version, st->tasks_succeeded, st->telemetry_receipted);
    return 1;
}
