/* Every answer shape of docs/ANSWERS.md and the routing methods, through the C API. */
#include "common.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    tm_engine *e = fixture(dir, "basic.toml");
    collected c;
    tm_lookup_info info;

    /* CNAME for every qtype, profile TTL, owner absolute. */
    uint16_t types[] = {1, 28, 5, 15, 16, 255};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        CHECK_EQ_INT(lookup(e, "PRIO.tm.example.", types[i], "192.0.2.1", NULL, 0, &c, &info), TM_RESULT_OK);
        CHECK_EQ_INT(info.rcode, 0);
        CHECK_EQ_INT(info.flags, TM_LOOKUP_AUTHORITATIVE);
        CHECK_EQ_INT(c.n_answer, 1);
        CHECK_EQ_STR(c.answer_type[0], "CNAME");
        CHECK_EQ_STR(c.answer[0], "primary.contoso.example.");
        CHECK_EQ_INT(c.answer_ttl[0], 30);
        CHECK_EQ_STR(c.owner, "prio.tm.example.");
    }
    /* A, AAAA, ANY, NODATA for a missing family. */
    CHECK_EQ_INT(lookup(e, "addrs.tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer_type[0], "A");
    CHECK_EQ_STR(c.answer[0], "192.0.2.10");
    CHECK_EQ_INT(lookup(e, "addrs.tm.example", 28, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.rcode, 0);
    CHECK_EQ_INT(info.answer_count, 0);
    CHECK_EQ_INT(info.authority_count, 1);
    CHECK_EQ_STR(c.authority_type, "SOA");
    CHECK_EQ_STR(c.authority_owner, "tm.example.");
    CHECK_EQ_INT(lookup(e, "deep.sub.tm.example", 28, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer_type[0], "AAAA");
    CHECK_EQ_STR(c.answer[0], "2001:db8::a");
    /* Apex. */
    CHECK_EQ_INT(lookup(e, "tm.example", 6, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer_type[0], "SOA");
    CHECK(strncmp(c.answer[0], "ns1.tm.example. hostmaster.tm.example. ", 39) == 0);
    CHECK_EQ_INT(lookup(e, "tm.example", 2, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(c.n_answer, 2);
    CHECK_EQ_STR(c.answer[1], "ns2.tm.example.");
    CHECK_EQ_INT(c.answer_ttl[1], 300);
    CHECK_EQ_INT(lookup(e, "tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.answer_count, 0);
    CHECK_EQ_INT(info.authority_count, 1);
    /* NXDOMAIN, disabled profile, not ours. */
    CHECK_EQ_INT(lookup(e, "nope.tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.rcode, 3);
    CHECK_EQ_STR(c.authority_type, "SOA");
    CHECK_EQ_INT(lookup(e, "off.tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.rcode, 3);
    CHECK_EQ_INT(lookup(e, "www.example.org", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.rcode, 5);
    CHECK_EQ_INT(info.flags, TM_LOOKUP_NOT_OURS);
    CHECK_EQ_INT(c.n_answer + c.n_authority, 0);

    /* Priority failover, fail open, back. */
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "prio", 4, "primary", 7, TM_STATUS_DEGRADED), TM_RESULT_OK);
    lookup(e, "prio.tm.example", 1, NULL, NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "secondary.contoso.example.");
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "prio", 4, "secondary", 9, TM_STATUS_DEGRADED), TM_RESULT_OK);
    lookup(e, "prio.tm.example", 1, NULL, NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "primary.contoso.example.");
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "prio.tm.example", 15, "secondary", 9, TM_STATUS_ONLINE), TM_RESULT_OK);
    lookup(e, "prio.tm.example", 1, NULL, NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "secondary.contoso.example.");

    /* Weighted: 3:1. */
    int heavy = 0;
    for (int i = 0; i < 8000; i++) {
        lookup(e, "weighted.tm.example", 1, NULL, NULL, 0, &c, &info);
        if (strcmp(c.answer[0], "192.0.2.1") == 0) heavy++;
    }
    CHECK(heavy > 5700 && heavy < 6300);

    /* Performance: by client, by ECS (IPv4 and IPv6), scope. */
    lookup(e, "perf.tm.example", 1, "127.0.0.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "eu.contoso.example.");
    lookup(e, "perf.tm.example", 1, "127.0.0.2", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "us.contoso.example.");
    lookup(e, "perf.tm.example", 1, "::1", "203.0.113.0", 24, &c, &info);
    CHECK_EQ_STR(c.answer[0], "asia.contoso.example.");
    CHECK_EQ_INT(info.scope_prefix, 24);
    lookup(e, "perf.tm.example", 1, "127.0.0.2", "2001:db8:1::", 48, &c, &info);
    CHECK_EQ_STR(c.answer[0], "eu.contoso.example.");
    CHECK_EQ_INT(info.scope_prefix, 48);

    /* A NULL callback counts only. */
    tm_query q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.qtype = 2;
    q.qname = "tm.example";
    q.qname_len = 10;
    CHECK_EQ_INT(tm_engine_lookup(e, &q, NULL, NULL, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.answer_count, 2);

    tm_engine_free(e);
    CHECK_DONE("test_lookup");
}
