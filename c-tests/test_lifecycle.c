/* Life cycle: versions, create from file and string, errors with file:line:col,
 * outputs untouched on failure, logging through the host hook, free. */
#include "common.h"

static int log_calls = 0;
static void on_log(void *ud, uint32_t level, const char *msg, size_t len) {
    CHECK(ud == (void *)&log_calls);
    CHECK(level >= TM_LOG_ERROR && level <= TM_LOG_DEBUG);
    CHECK(strlen(msg) == len);
    log_calls++;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    CHECK_EQ_INT(tm_abi_version(), TM_ABI_VERSION);
    CHECK(strncmp(tm_version(), "trafficmgr/" TM_VERSION_STRING " hickory-proto/", 11 + strlen(TM_VERSION_STRING) + 15) == 0);
    CHECK_EQ_STR(tm_result_str(TM_RESULT_OK), "ok");
    CHECK(strlen(tm_result_str(123456)) > 0);

    /* From a file, with a log hook. */
    char path[1024], err[TM_ERRBUF_SIZE];
    snprintf(path, sizeof path, "%s/basic.toml", dir);
    tm_host host = {sizeof(tm_host), &log_calls, on_log};
    tm_engine *e = NULL;
    CHECK_EQ_INT(tm_engine_new(path, strlen(path), &host, err, sizeof err, &e), TM_RESULT_OK);
    CHECK(e != NULL);
    CHECK(log_calls > 0);
    collected c;
    tm_lookup_info info;
    CHECK_EQ_INT(lookup(e, "prio.tm.example", 1, "192.0.2.1", NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer[0], "primary.contoso.example.");
    CHECK_EQ_INT(tm_engine_reload(e, err, sizeof err), TM_RESULT_OK);
    tm_engine_free(e);

    /* From a string, relative paths from base_dir. */
    const char *cfg =
        "[engine]\nlatency_table = \"latency.csv\"\n"
        "[[zone]]\nname = \"s.example\"\nnameservers = [\"ns.s.example\"]\n"
        "[[profile]]\nname = \"www\"\nrouting = \"performance\"\n"
        "[[profile.endpoint]]\nname = \"us\"\ntarget = \"us.example\"\nlocation = \"eastus\"\n"
        "[[profile.endpoint]]\nname = \"eu\"\ntarget = \"eu.example\"\nlocation = \"westeurope\"\n";
    e = NULL;
    CHECK_EQ_INT(tm_engine_new_from_string(cfg, strlen(cfg), dir, strlen(dir), NULL, err, sizeof err, &e), TM_RESULT_OK);
    CHECK_EQ_INT(lookup(e, "www.s.example", 1, "127.0.0.2", NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer[0], "us.example.");
    CHECK_EQ_INT(lookup(e, "www.s.example", 1, "127.0.0.2", "198.51.100.0", 24, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer[0], "eu.example.");
    CHECK_EQ_INT(info.scope_prefix, 24);
    tm_engine_free(e);

    /* A bad config: error code, message with line:col and key path, output untouched. */
    const char *bad = "[[zone]]\nname = \"b.example\"\nnameservers = [\"ns.b.example\"]\n"
                      "[[profile]]\nname = \"p\"\nrouting = \"priority\"\nttl = -5\n";
    tm_engine *sentinel = (tm_engine *)0x1;
    e = sentinel;
    CHECK_EQ_INT(tm_engine_new_from_string(bad, strlen(bad), NULL, 0, NULL, err, sizeof err, &e), TM_RESULT_CONFIG_INVALID);
    CHECK(e == sentinel);
    CHECK_EQ_STR(err, "<string>:7:1: profile[0].ttl: -5 is out of range 0..=2147483647");
    /* A tiny errbuf is truncated and NUL-terminated. */
    char small[8];
    CHECK_EQ_INT(tm_engine_new_from_string(bad, strlen(bad), NULL, 0, NULL, small, sizeof small, &e), TM_RESULT_CONFIG_INVALID);
    CHECK_EQ_STR(small, "<string");
    /* A missing file. */
    CHECK_EQ_INT(tm_engine_new("/nonexistent/tm.toml", 20, NULL, err, sizeof err, &e), TM_RESULT_CONFIG_INVALID);
    CHECK(strstr(err, "/nonexistent/tm.toml") != NULL);
    CHECK(e == sentinel);

    tm_engine_free(NULL);
    CHECK_DONE("test_lifecycle");
}
