/* Lookups from 8 pthreads at once, while the main thread flips health and
 * reloads the configuration: every answer is one of the valid ones. */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>

static tm_engine *engine;
static atomic_int stop;
static atomic_long total, bad;

static void *worker(void *arg) {
    long id = (long)arg;
    collected c;
    tm_lookup_info info;
    uint8_t q[] = {0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                   4, 'p', 'r', 'i', 'o', 2, 't', 'm', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
    uint8_t buf[512];
    while (!atomic_load(&stop)) {
        const char *client = (id % 2) ? "127.0.0.2" : "127.0.0.3";
        if (lookup(engine, "perf.tm.example", 1, client, NULL, 0, &c, &info) != TM_RESULT_OK || c.n_answer != 1 ||
            strcmp(c.answer[0], (id % 2) ? "us.contoso.example." : "asia.contoso.example.") != 0)
            atomic_fetch_add(&bad, 1);
        if (lookup(engine, "prio.tm.example", 1, NULL, NULL, 0, &c, &info) != TM_RESULT_OK || c.n_answer != 1 ||
            (strcmp(c.answer[0], "primary.contoso.example.") && strcmp(c.answer[0], "secondary.contoso.example.")))
            atomic_fetch_add(&bad, 1);
        size_t n = 0;
        tm_wire_request w;
        memset(&w, 0, sizeof w);
        w.struct_size = sizeof w;
        w.query = q;
        w.query_len = sizeof q;
        if (tm_engine_answer(engine, &w, buf, sizeof buf, &n) != TM_RESULT_OK || buf[7] != 1)
            atomic_fetch_add(&bad, 1);
        atomic_fetch_add(&total, 3);
    }
    return NULL;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    engine = fixture(dir, "basic.toml");
    pthread_t t[8];
    for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    char err[TM_ERRBUF_SIZE];
    /* TM_ROUNDS: fewer rounds under valgrind, which runs one thread at a time. */
    int rounds = getenv("TM_ROUNDS") ? atoi(getenv("TM_ROUNDS")) : 40;
    for (int round = 0; round < rounds; round++) {
        CHECK_EQ_INT(tm_engine_set_monitor_status(engine, "prio", 4, "primary", 7,
                                                  round % 2 ? TM_STATUS_DEGRADED : TM_STATUS_ONLINE),
                     TM_RESULT_OK);
        CHECK_EQ_INT(tm_engine_reload(engine, err, sizeof err), TM_RESULT_OK);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    CHECK(atomic_load(&total) > 24);
    CHECK_EQ_INT(atomic_load(&bad), 0);
    printf("test_threads: %ld lookups from 8 threads\n", (long)atomic_load(&total));
    tm_engine_free(engine);
    CHECK_DONE("test_threads");
}
