/* Shared engines (dnsdist's per-thread Lua states open one engine by path)
 * and answering a query in place in the host's packet buffer. */
#include "common.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    char path[1024], err[TM_ERRBUF_SIZE];
    snprintf(path, sizeof path, "%s/basic.toml", dir);
    const tm_engine *a = NULL, *b = NULL;
    CHECK_EQ_INT(tm_engine_open_shared(path, strlen(path), err, sizeof err, &a), TM_RESULT_OK);
    CHECK_EQ_INT(tm_engine_open_shared(path, strlen(path), err, sizeof err, &b), TM_RESULT_OK);
    CHECK(a != NULL && a == b);
    const tm_engine *bad = (const tm_engine *)0x1;
    CHECK_EQ_INT(tm_engine_open_shared("/nonexistent.toml", 17, err, sizeof err, &bad), TM_RESULT_CONFIG_INVALID);
    CHECK(bad == (const tm_engine *)0x1);
    CHECK_EQ_INT(tm_engine_open_shared(NULL, 3, err, sizeof err, &bad), TM_RESULT_NULL_ARGUMENT);

    /* perf.tm.example A with ECS 203.0.113.0/24, answered in place. */
    uint8_t buf[512] = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                        4, 'p', 'e', 'r', 'f', 2, 't', 'm', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
                        0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 203, 0, 113};
    size_t qlen = 55, n = 0;
    uint8_t client[4] = {127, 0, 0, 2};
    CHECK_EQ_INT(tm_engine_answer_in_place(a, buf, qlen, sizeof buf, client, 4, 0, &n), TM_RESULT_OK);
    CHECK(n > qlen);
    CHECK(buf[0] == 0xab && (buf[2] & 0x84) == 0x84);
    CHECK_EQ_INT(buf[7], 1);
    const uint8_t *ecs = buf + n - 11;
    CHECK(ecs[1] == 8 && ecs[6] == 24 && ecs[7] == 24);
    /* Bad arguments. */
    CHECK_EQ_INT(tm_engine_answer_in_place(a, buf, 600, sizeof buf, client, 4, 0, &n), TM_RESULT_BAD_LENGTH);
    CHECK_EQ_INT(tm_engine_answer_in_place(a, buf, 5, sizeof buf, client, 4, 0, &n), TM_RESULT_NOT_A_QUERY);
    CHECK_EQ_INT(tm_engine_answer_in_place(a, buf, qlen, sizeof buf, client, 7, 0, &n), TM_RESULT_UNKNOWN_FAMILY);
    CHECK_EQ_INT(tm_engine_answer_in_place(a, NULL, qlen, sizeof buf, client, 4, 0, &n), TM_RESULT_NULL_ARGUMENT);
    CHECK_EQ_INT(tm_engine_answer_in_place(NULL, buf, qlen, sizeof buf, client, 4, 0, &n), TM_RESULT_NULL_ARGUMENT);

    CHECK_EQ_INT(tm_engine_release_shared(a), TM_RESULT_OK);
    CHECK_EQ_INT(tm_engine_release_shared(b), TM_RESULT_OK);
    CHECK_EQ_INT(tm_engine_release_shared(b), TM_RESULT_NOT_FOUND);
    CHECK_EQ_INT(tm_engine_release_shared(NULL), TM_RESULT_OK);
    CHECK_DONE("test_shared");
}
