/* Helpers shared by the C tests: create the fixture engine, look up into
 * a small result struct. */
#ifndef TM_COMMON_H
#define TM_COMMON_H
#include "trafficmgr.h"
#include "check.h"
#include <arpa/inet.h>
#include <stdint.h>

typedef struct {
    int n_answer, n_authority;
    char answer[8][256];
    char answer_type[8][8];
    uint32_t answer_ttl[8];
    char owner[256];
    char authority_type[8];
    char authority_owner[256];
} collected;

static inline int32_t collect(void *ud, const tm_record *r) {
    collected *c = (collected *)ud;
    if (r->section == TM_SECTION_ANSWER && c->n_answer < 8) {
        snprintf(c->answer[c->n_answer], 256, "%.*s", (int)r->rdata_text_len, r->rdata_text);
        snprintf(c->answer_type[c->n_answer], 8, "%s", r->type_name);
        c->answer_ttl[c->n_answer] = r->ttl;
        snprintf(c->owner, 256, "%s", r->owner);
        /* The text is NUL-terminated too (BIND's putrr takes it as is). */
        if (strlen(r->rdata_text) != r->rdata_text_len) return 1;
        c->n_answer++;
    } else if (r->section == TM_SECTION_AUTHORITY && c->n_authority < 8) {
        snprintf(c->authority_type, 8, "%s", r->type_name);
        snprintf(c->authority_owner, 256, "%s", r->owner);
        c->n_authority++;
    }
    return 0;
}

static inline tm_address addr_of(const char *s) {
    tm_address a;
    memset(&a, 0, sizeof a);
    if (s == NULL) return a;
    if (inet_pton(AF_INET, s, a.bytes) == 1) {
        a.family = TM_FAMILY_IPV4;
    } else if (inet_pton(AF_INET6, s, a.bytes) == 1) {
        a.family = TM_FAMILY_IPV6;
    }
    return a;
}

/* Looks up name/qtype for client (and ECS if ecs != NULL). */
static inline tm_result lookup(const tm_engine *e, const char *name, uint16_t qtype, const char *client,
                        const char *ecs, uint8_t ecs_prefix, collected *c, tm_lookup_info *info) {
    tm_query q;
    memset(&q, 0, sizeof q);
    q.struct_size = sizeof q;
    q.qtype = qtype;
    q.qname = name;
    q.qname_len = strlen(name);
    q.client = addr_of(client);
    if (ecs) {
        q.ecs = addr_of(ecs);
        q.ecs_source_prefix = ecs_prefix;
    }
    memset(c, 0, sizeof *c);
    return tm_engine_lookup(e, &q, collect, c, info);
}

static inline tm_engine *fixture(const char *dir, const char *file) {
    char path[1024], err[TM_ERRBUF_SIZE];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    tm_engine *e = NULL;
    tm_result r = tm_engine_new(path, strlen(path), NULL, err, sizeof err, &e);
    if (r != TM_RESULT_OK) {
        fprintf(stderr, "cannot load %s: %s: %s\n", path, tm_result_str(r), err);
        exit(1);
    }
    return e;
}
#endif
