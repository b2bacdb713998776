/* The health monitor through the C API: threads started by create and all
 * gone after free (counted in /proc/self/task), free returning promptly
 * while probes hang, wait_ready, admin overrides, the status report. */
#include "common.h"
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static atomic_int stop_servers;

static int count_threads(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

typedef struct {
    int fd;
    int hang;
} server;

/* Accepts connections; answers 200, or holds them open without a word. */
static void *serve(void *arg) {
    server *s = (server *)arg;
    int held[64];
    int nheld = 0;
    while (!atomic_load(&stop_servers)) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        char buf[2048];
        ssize_t n = recv(c, buf, sizeof buf, 0);
        (void)n;
        if (s->hang && nheld < 64) {
            held[nheld++] = c;
        } else {
            const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            ssize_t w = send(c, r, strlen(r), 0);
            (void)w;
            close(c);
        }
    }
    for (int i = 0; i < nheld; i++) close(held[i]);
    return NULL;
}

static int listen_on(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    listen(fd, 64);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

int main(void) {
    int ok_port, hang_port;
    server ok = {listen_on(&ok_port), 0}, hang = {listen_on(&hang_port), 1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, serve, &ok);
    pthread_create(&t2, NULL, serve, &hang);
    int before = count_threads();

    char cfg[2048], err[TM_ERRBUF_SIZE];
    snprintf(cfg, sizeof cfg,
             "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n"
             "[[profile]]\nname = \"p\"\nrouting = \"priority\"\n"
             "[profile.monitor]\ninterval = \"20s\"\ntimeout = \"15s\"\ntolerated_failures = 0\n"
             "[[profile.endpoint]]\nname = \"up\"\naddresses = [\"192.0.2.1\"]\nprobe = { host = \"127.0.0.1\", port = %d }\n"
             "[[profile.endpoint]]\nname = \"hung\"\naddresses = [\"192.0.2.2\"]\nprobe = { host = \"127.0.0.1\", port = %d }\n"
             "[[profile]]\nname = \"q\"\nrouting = \"priority\"\n"
             "[profile.monitor]\ninterval = \"20s\"\ntimeout = \"15s\"\n"
             "[[profile.endpoint]]\nname = \"up\"\naddresses = [\"192.0.2.3\"]\nprobe = { host = \"127.0.0.1\", port = %d }\n",
             ok_port, hang_port, ok_port);
    tm_engine *e = NULL;
    CHECK_EQ_INT(tm_engine_new_from_string(cfg, strlen(cfg), NULL, 0, NULL, err, sizeof err, &e), TM_RESULT_OK);
    CHECK(count_threads() > before);

    /* "hung" never answers within the wait: not ready yet. */
    CHECK_EQ_INT(tm_engine_wait_ready(e, 300), TM_RESULT_TIMEOUT);
    CHECK_EQ_INT(tm_engine_wait_ready(NULL, 1), TM_RESULT_NULL_ARGUMENT);

    /* The status report, with the buffer-size protocol. */
    size_t need = 0;
    char small[16];
    CHECK_EQ_INT(tm_engine_status_json(e, small, sizeof small, &need), TM_RESULT_BUFFER_TOO_SMALL);
    CHECK(need > sizeof small);
    char *big = malloc(need + 1);
    size_t got = 0;
    CHECK_EQ_INT(tm_engine_status_json(e, big, need + 1, &got), TM_RESULT_OK);
    CHECK(got <= need + 64);
    CHECK(strstr(big, "\"probes_sent\"") != NULL);
    CHECK(strstr(big, "\"name\":\"hung\"") != NULL);
    free(big);
    CHECK_EQ_INT(tm_engine_status_json(e, NULL, 10, &got), TM_RESULT_NULL_ARGUMENT);

    /* Admin overrides. */
    collected c;
    tm_lookup_info info;
    CHECK_EQ_INT(tm_engine_set_admin_state(e, "q", 1, "up", 2, TM_ADMIN_DRAIN), TM_RESULT_OK);
    CHECK_EQ_INT(lookup(e, "q.tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_INT(info.answer_count, 0);
    CHECK_EQ_INT(tm_engine_set_admin_state(e, "q", 1, "up", 2, TM_ADMIN_NONE), TM_RESULT_OK);
    CHECK_EQ_INT(lookup(e, "q.tm.example", 1, NULL, NULL, 0, &c, &info), TM_RESULT_OK);
    CHECK_EQ_STR(c.answer[0], "192.0.2.3");
    CHECK_EQ_INT(tm_engine_set_admin_state(e, "q", 1, "up", 2, 77), TM_RESULT_BAD_VALUE);
    CHECK_EQ_INT(tm_engine_set_admin_state(e, "q", 1, "nope", 4, TM_ADMIN_DRAIN), TM_RESULT_NOT_FOUND);
    CHECK_EQ_INT(tm_engine_set_admin_state(e, NULL, 1, "up", 2, TM_ADMIN_DRAIN), TM_RESULT_NULL_ARGUMENT);

    /* Free while the "hung" probe is in flight (its timeout is 15 s): the
     * probe is interrupted, every thread joined. */
    double t0 = now_s();
    tm_engine_free(e);
    double took = now_s() - t0;
    printf("test_monitor: free took %.3f s with a probe hanging\n", took);
    CHECK(took < 3.0);
    CHECK_EQ_INT(count_threads(), before);

    atomic_store(&stop_servers, 1);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    close(ok.fd);
    close(hang.fd);
    CHECK_DONE("test_monitor");
}
