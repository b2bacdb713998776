/* Reload under load: 4 threads look up in a tight loop while the main
 * thread rewrites the config 100 times, cycling through two valid configs
 * (different answers) and an invalid one; the file watch runs as well.
 * Every lookup must return one of the two valid answers. */
#include "common.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

static tm_engine *engine;
static atomic_int stop;
static atomic_long total, bad;

static void *worker(void *arg) {
    (void)arg;
    collected c;
    tm_lookup_info info;
    while (!atomic_load(&stop)) {
        tm_result r = lookup(engine, "www.r.example", 1, "198.51.100.7", NULL, 0, &c, &info);
        if (r != TM_RESULT_OK || info.rcode != 0 || c.n_answer != 1 ||
            (strcmp(c.answer[0], "blue.example.") != 0 && strcmp(c.answer[0], "green.example.") != 0))
            atomic_fetch_add(&bad, 1);
        atomic_fetch_add(&total, 1);
    }
    return NULL;
}

static void write_file(const char *path, const char *text) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

int main(void) {
    char dir[] = "/tmp/tm-c-reload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[1024];
    snprintf(path, sizeof path, "%s/tm.toml", dir);
    const char *head = "[engine]\nwatch_interval = \"100ms\"\n[[zone]]\nname = \"r.example\"\nnameservers = [\"ns.r.example\"]\n"
                       "[[profile]]\nname = \"www\"\nrouting = \"priority\"\n[[profile.endpoint]]\nname = \"a\"\n";
    char blue[1024], green[1024], broken[1024];
    snprintf(blue, sizeof blue, "%starget = \"blue.example\"\n", head);
    snprintf(green, sizeof green, "%starget = \"green.example\"\n", head);
    snprintf(broken, sizeof broken, "%starget = \"green.example\"\nweight = 1001\n", head);
    write_file(path, blue);

    char err[TM_ERRBUF_SIZE];
    CHECK_EQ_INT(tm_engine_new(path, strlen(path), NULL, err, sizeof err, &engine), TM_RESULT_OK);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, worker, (void *)i);

    int rounds = getenv("TM_ROUNDS") ? atoi(getenv("TM_ROUNDS")) * 3 : 100;
    int failed = 0;
    for (int i = 0; i < rounds; i++) {
        const char *text = (i % 3 == 0) ? blue : (i % 3 == 1) ? green : broken;
        write_file(path, text);
        tm_result r = tm_engine_reload(engine, err, sizeof err);
        if (i % 3 == 2) {
            CHECK_EQ_INT(r, TM_RESULT_CONFIG_INVALID);
            CHECK(strstr(err, "profile[0].endpoint[0].weight") != NULL);
            char last[TM_ERRBUF_SIZE];
            size_t n = 0;
            CHECK_EQ_INT(tm_engine_last_reload_error(engine, last, sizeof last, &n), TM_RESULT_OK);
            CHECK(n > 0 && strstr(last, ":12:1: profile[0].endpoint[0].weight: 1001 is out of range 0..=1000") != NULL);
            failed++;
        } else {
            CHECK_EQ_INT(r, TM_RESULT_OK);
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("test_reload: %ld lookups during %d rewrites (%d invalid), %ld wrong\n", (long)atomic_load(&total), rounds,
           failed, (long)atomic_load(&bad));
    CHECK(atomic_load(&total) > 0);
    CHECK_EQ_INT(atomic_load(&bad), 0);

    /* The status counts the failures. */
    size_t need = 0;
    char tiny[2];
    CHECK_EQ_INT(tm_engine_status_json(engine, tiny, sizeof tiny, &need), TM_RESULT_BUFFER_TOO_SMALL);
    char *json = malloc(need + 1);
    CHECK_EQ_INT(tm_engine_status_json(engine, json, need + 1, &need), TM_RESULT_OK);
    CHECK(strstr(json, "\"reloads\"") != NULL);
    free(json);
    size_t n = 0;
    CHECK_EQ_INT(tm_engine_last_reload_error(engine, NULL, 10, &n), TM_RESULT_NULL_ARGUMENT);
    tm_engine_free(engine);
    unlink(path);
    rmdir(dir);
    CHECK_DONE("test_reload");
}
