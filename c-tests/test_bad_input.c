/* Every bad input returns an error code; nothing crashes. */
#include "common.h"

static int32_t stop_at_first(void *ud, const tm_record *r) {
    (void)r;
    (*(int *)ud)++;
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    tm_engine *e = fixture(dir, "basic.toml");
    char err[TM_ERRBUF_SIZE];
    tm_engine *out = NULL;
    collected c;
    tm_lookup_info info;

    /* Creation. */
    CHECK_EQ_INT(tm_engine_new(NULL, 5, NULL, err, sizeof err, &out), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_new("x", 1, NULL, err, sizeof err, NULL), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_new("\xff\xfe", 2, NULL, err, sizeof err, &out), TM_RESULT_INVALID_UTF8);
    CHECK_EQ_INT(tm_engine_new_from_string(NULL, 0, NULL, 0, NULL, err, sizeof err, &out), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_new_from_string("\xc3", 1, NULL, 0, NULL, NULL, 0, &out), TM_RESULT_INVALID_UTF8);
    tm_host small_host = {4, NULL, NULL};
    CHECK_EQ_INT(tm_engine_new("x", 1, &small_host, err, sizeof err, &out), TM_RESULT_STRUCT_TOO_SMALL);
    CHECK(out == NULL);
    CHECK_EQ_INT(tm_engine_reload(NULL, NULL, 0), TM_RESULT_NULL_ARGUMENT);

    /* Lookups. */
    tm_query q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.qtype = 1;
    q.qname = "prio.tm.example";
    q.qname_len = strlen(q.qname);
    CHECK_EQ_INT(tm_engine_lookup(NULL, &q, collect, &c, &info), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_lookup(e, NULL, collect, &c, &info), TM_RESULT_NULL_ARGUMENT);
    tm_query bad = q;
    bad.qname = NULL;
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_NULL_ARGUMENT);
    bad = q;
    bad.struct_size = 8;
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_STRUCT_TOO_SMALL);
    bad = q;
    bad.qname = "pr\xffo.tm.example";
    bad.qname_len = strlen(bad.qname);
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_INVALID_UTF8);
    char label[100];
    memset(label, 'a', 64);
    strcpy(label + 64, ".tm.example");
    CHECK_EQ_INT(lookup(e, label, 1, NULL, NULL, 0, &c, &info), TM_RESULT_LABEL_TOO_LONG);
    char longname[400];
    longname[0] = 0;
    for (int i = 0; i < 30; i++) strcat(longname, "abcdefghi.");
    strcat(longname, "tm.example");
    CHECK_EQ_INT(lookup(e, longname, 1, NULL, NULL, 0, &c, &info), TM_RESULT_NAME_TOO_LONG);
    CHECK_EQ_INT(lookup(e, "a..tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_BAD_NAME);
    bad = q;
    bad.client.family = 99;
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_UNKNOWN_FAMILY);
    bad = q;
    bad.ecs_source_prefix = 24;
    bad.ecs.family = 7;
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_UNKNOWN_FAMILY);
    bad.ecs.family = TM_FAMILY_NONE;
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_UNKNOWN_FAMILY);
    bad.ecs = addr_of("203.0.113.0");
    bad.ecs_source_prefix = 33;
    CHECK_EQ_INT(tm_engine_lookup(e, &bad, collect, &c, &info), TM_RESULT_BAD_PREFIX);
    /* Aborting callback. */
    int calls = 0;
    q.qname = "tm.example";
    q.qname_len = 10;
    q.qtype = 2;
    CHECK_EQ_INT(tm_engine_lookup(e, &q, stop_at_first, &calls, &info), TM_RESULT_CALLBACK_ABORTED);
    CHECK_EQ_INT(calls, 1);
    /* A name with an explicit length: not NUL-terminated, trailing garbage ignored. */
    q.qname = "prio.tm.exampleXXXX";
    q.qname_len = 15;
    q.qtype = 1;
    CHECK_EQ_INT(tm_engine_lookup(e, &q, collect, memset(&c, 0, sizeof c), &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer[0], "primary.contoso.example.");

    /* Wire. */
    uint8_t query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                       4, 'p', 'r', 'i', 'o', 2, 't', 'm', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
    uint8_t buf[512];
    size_t written = 7777;
    tm_wire_request w;
    memset(&w, 0, sizeof w);
    w.struct_size = sizeof w;
    w.transport = TM_TRANSPORT_UDP;
    w.query = query;
    w.query_len = sizeof query;
    CHECK_EQ_INT(tm_engine_answer(NULL, &w, buf, sizeof buf, &written), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_answer(e, NULL, buf, sizeof buf, &written), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_answer(e, &w, NULL, sizeof buf, &written), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_answer(e, &w, buf, sizeof buf, NULL), TM_RESULT_NULL_ARGUMENT);
    tm_wire_request wb = w;
    wb.struct_size = 3;
    CHECK_EQ_INT(tm_engine_answer(e, &wb, buf, sizeof buf, &written), TM_RESULT_STRUCT_TOO_SMALL);
    wb = w;
    wb.transport = 9;
    CHECK_EQ_INT(tm_engine_answer(e, &wb, buf, sizeof buf, &written), TM_RESULT_BAD_VALUE);
    wb = w;
    wb.client.family = 5;
    CHECK_EQ_INT(tm_engine_answer(e, &wb, buf, sizeof buf, &written), TM_RESULT_UNKNOWN_FAMILY);
    wb = w;
    wb.query_len = 5;
    CHECK_EQ_INT(tm_engine_answer(e, &wb, buf, sizeof buf, &written), TM_RESULT_NOT_A_QUERY);
    CHECK_EQ_INT(tm_engine_answer(e, &w, buf, 10, &written), TM_RESULT_BUFFER_TOO_SMALL);
    CHECK_EQ_INT(written, 7777);
    CHECK_EQ_INT(tm_engine_answer(e, &w, buf, sizeof buf, &written), TM_RESULT_OK);
    CHECK(written > sizeof query);

    /* Monitor status. */
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "prio", 4, "nope", 4, TM_STATUS_ONLINE), TM_RESULT_NOT_FOUND);
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "prio", 4, "primary", 7, 42), TM_RESULT_BAD_VALUE);
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, NULL, 4, "primary", 7, 1), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_set_monitor_status(NULL, "prio", 4, "primary", 7, 1), TM_RESULT_NULL_ARGUMENT);

    tm_engine_free(e);
    CHECK_DONE("test_bad_input");
}
