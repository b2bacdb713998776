/* Every routing method through the C API: multivalue, subnet (with ECS and
 * its scope), weighted affinity, nested profiles, and geographic on the
 * sample IP-to-country database of tests/data (geo-sample.mmdb). */
#include "common.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    tm_engine *e = fixture(dir, "methods.toml");
    collected c;
    tm_lookup_info info;

    /* Multivalue: 3 A records in priority order, AAAA skips m2. */
    CHECK_EQ_INT(lookup(e, "mv.tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(c.n_answer, 3);
    CHECK_EQ_STR(c.answer[0], "192.0.2.1");
    CHECK_EQ_STR(c.answer[2], "192.0.2.3");
    CHECK_EQ_INT(lookup(e, "mv.tm.example", 28, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(c.n_answer, 3);
    CHECK_EQ_STR(c.answer[2], "2001:db8::4");
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "mv", 2, "m1", 2, TM_STATUS_DEGRADED), TM_RESULT_OK);
    lookup(e, "mv.tm.example", 1, NULL, NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "192.0.2.2");

    /* Subnet: by client and by ECS, with the scope. */
    lookup(e, "sub.tm.example", 1, "10.1.200.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "ten-one.example.");
    lookup(e, "sub.tm.example", 1, "127.0.0.1", "10.7.0.0", 16, &c, &info);
    CHECK_EQ_STR(c.answer[0], "ten.example.");
    lookup(e, "sub.tm.example", 1, "127.0.0.1", "2001:db8:10::", 48, &c, &info);
    CHECK_EQ_STR(c.answer[0], "ten-one.example.");
    CHECK_EQ_INT(info.scope_prefix, 48);
    lookup(e, "sub.tm.example", 1, "192.0.2.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "rest.example.");
    lookup(e, "sub-strict.tm.example", 1, "192.0.2.1", NULL, 0, &c, &info);
    CHECK_EQ_INT(info.rcode, 0);
    CHECK_EQ_INT(info.answer_count, 0);

    /* Weighted affinity: one /24, one answer. */
    lookup(e, "aff.tm.example", 1, "203.0.113.5", NULL, 0, &c, &info);
    char first[256];
    snprintf(first, sizeof first, "%s", c.answer[0]);
    for (int i = 0; i < 50; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "203.0.113.%d", i * 5);
        lookup(e, "aff.tm.example", 1, ip, NULL, 0, &c, &info);
        CHECK_EQ_STR(c.answer[0], first);
        CHECK_EQ_INT(info.scope_prefix, 24);
    }

    /* Nested. */
    lookup(e, "parent.tm.example", 1, NULL, NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "eu1.example.");
    CHECK_EQ_INT(tm_engine_set_monitor_status(e, "eu", 2, "eu2", 3, TM_STATUS_DEGRADED), TM_RESULT_OK);
    lookup(e, "parent.tm.example", 1, NULL, NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "us1.example.");
    tm_engine_free(e);

    /* Geographic on the sample database. */
    char cfg[2048], err[TM_ERRBUF_SIZE];
    snprintf(cfg, sizeof cfg,
             "[engine]\ngeoip_db = \"%s/geo-sample.mmdb\"\n"
             "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n"
             "[[profile]]\nname = \"geo\"\nrouting = \"geographic\"\n"
             "[[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\ngeo = [\"US\"]\n"
             "[[profile.endpoint]]\nname = \"eu\"\ntarget = \"eu.example\"\ngeo = [\"EU\"]\n"
             "[[profile.endpoint]]\nname = \"au\"\ntarget = \"au.example\"\ngeo = [\"AU\"]\n",
             dir);
    CHECK_EQ_INT(tm_engine_new_from_string(cfg, strlen(cfg), NULL, 0, NULL, err, sizeof err, &e), TM_RESULT_OK);
    lookup(e, "geo.tm.example", 1, "8.8.8.8", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "us.example.");
    lookup(e, "geo.tm.example", 1, "127.0.0.1", "81.2.69.0", 24, &c, &info);
    CHECK_EQ_STR(c.answer[0], "eu.example.");
    lookup(e, "geo.tm.example", 1, "1.1.1.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "au.example.");
    lookup(e, "geo.tm.example", 1, "127.0.0.1", NULL, 0, &c, &info);
    CHECK_EQ_INT(info.answer_count, 0);
    tm_engine_free(e);

    /* Spill-over by tm_engine_set_load: at spill_full every client moves,
     * with ttl_unstable on the record; a negative load clears it. */
    snprintf(cfg, sizeof cfg,
             "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n"
             "[[profile]]\nname = \"app\"\nrouting = \"priority\"\nttl = 300\nttl_unstable = 7\n"
             "spill_start = 0.5\nspill_full = 1.0\n"
             "[[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\n"
             "[[profile.endpoint]]\nname = \"b\"\naddresses = [\"192.0.2.2\"]\n");
    CHECK_EQ_INT(tm_engine_new_from_string(cfg, strlen(cfg), NULL, 0, NULL, err, sizeof err, &e), TM_RESULT_OK);
    lookup(e, "app.tm.example", 1, "198.51.100.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "192.0.2.1");
    CHECK_EQ_INT(c.answer_ttl[0], 300);
    CHECK_EQ_INT(tm_engine_set_load(e, "app", 3, "a", 1, 1.0), TM_RESULT_OK);
    lookup(e, "app.tm.example", 1, "198.51.100.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "192.0.2.2");
    CHECK_EQ_INT(c.answer_ttl[0], 7);
    CHECK_EQ_INT(tm_engine_set_load(e, "app", 3, "a", 1, 0.0 / 0.0), TM_RESULT_BAD_VALUE);
    CHECK_EQ_INT(tm_engine_set_load(e, "app", 3, "zz", 2, 0.5), TM_RESULT_NOT_FOUND);
    CHECK_EQ_INT(tm_engine_set_load(e, "app", 3, "a", 1, -1.0), TM_RESULT_OK);
    lookup(e, "app.tm.example", 1, "198.51.100.1", NULL, 0, &c, &info);
    CHECK_EQ_STR(c.answer[0], "192.0.2.1");
    CHECK_EQ_INT(c.answer_ttl[0], 300);
    tm_engine_free(e);
    CHECK_DONE("test_methods");
}
