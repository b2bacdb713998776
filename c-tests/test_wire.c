/* tm_engine_answer: a hand-built query with ECS gets a complete reply. */
#include "common.h"

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data";
    tm_engine *e = fixture(dir, "basic.toml");
    /* perf.tm.example A, RD, EDNS with ECS 203.0.113.0/24. */
    uint8_t q[] = {0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
                   4, 'p', 'e', 'r', 'f', 2, 't', 'm', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1,
                   0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0, 203, 0, 113};
    uint8_t buf[512];
    size_t n = 0;
    tm_wire_request w;
    memset(&w, 0, sizeof w);
    w.struct_size = sizeof w;
    w.transport = TM_TRANSPORT_UDP;
    w.query = q;
    w.query_len = sizeof q;
    w.client = addr_of("127.0.0.2");
    CHECK_EQ_INT(tm_engine_answer(e, &w, buf, sizeof buf, &n), TM_RESULT_OK);
    CHECK(buf[0] == 0xab && buf[1] == 0xcd);
    CHECK(buf[2] & 0x80);            /* QR */
    CHECK(buf[2] & 0x04);            /* AA */
    CHECK(buf[2] & 0x01);            /* RD copied */
    CHECK_EQ_INT(buf[3] & 0x0f, 0);  /* NOERROR */
    CHECK_EQ_INT(buf[7], 1);         /* one answer */
    CHECK_EQ_INT(buf[11], 1);        /* OPT */
    /* The ECS option is the last 11 octets: code 8, len 7, family 1, source 24, scope 24. */
    CHECK(n > 11);
    const uint8_t *ecs = buf + n - 11;
    CHECK(ecs[0] == 0 && ecs[1] == 8 && ecs[3] == 7 && ecs[5] == 1 && ecs[6] == 24 && ecs[7] == 24);
    CHECK(ecs[8] == 203 && ecs[9] == 0 && ecs[10] == 113);
    /* The answer: a CNAME to asia.contoso.example. */
    const char target[] = "\x04" "asia" "\x07" "contoso" "\x07" "example";
    int found = 0;
    for (size_t i = 0; i + sizeof target <= n; i++)
        if (memcmp(buf + i, target, sizeof target) == 0) found = 1;
    CHECK(found);

    /* Over TCP the limit is the buffer; a name outside our zones is REFUSED. */
    uint8_t q2[] = {0, 7, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
                    3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0, 0, 1, 0, 1};
    w.query = q2;
    w.query_len = sizeof q2;
    w.transport = TM_TRANSPORT_TCP;
    CHECK_EQ_INT(tm_engine_answer(e, &w, buf, sizeof buf, &n), TM_RESULT_OK);
    CHECK_EQ_INT(buf[3] & 0x0f, 5);
    CHECK_EQ_INT(buf[2] & 0x04, 0);
    CHECK_EQ_INT(n, sizeof q2);

    /* Any buffer between the question and question + OPT: an error or a
     * whole message whose ARCOUNT covers every octet after the question
     * (it once returned OK with a partial OPT after ARCOUNT 0). */
    w.query = q;
    w.query_len = sizeof q;
    w.transport = TM_TRANSPORT_UDP;
    for (size_t len = 0; len <= sizeof q + 40; len++) {
        uint8_t small[128];
        size_t m = 0;
        tm_result r = tm_engine_answer(e, &w, small, len, &m);
        if (r != TM_RESULT_OK) {
            CHECK_EQ_INT(r, TM_RESULT_BUFFER_TOO_SMALL);
            continue;
        }
        CHECK(m <= len);
        /* The question is 21 octets from offset 12; records follow. */
        size_t after = 12 + 21;
        CHECK(m >= after);
        int ar = small[11], an = small[7];
        if (an == 0 && ar == 0) CHECK_EQ_INT(m, after);
        if (ar == 1 && an == 0) CHECK_EQ_INT(m, after + 11 + 4 + 7); /* OPT with ECS */
    }

    /* In place (the dnsdist path): a 5,048-octet TCP query — a padding
     * option fills it — is answered, as the header promises up to 65,535. */
    static uint8_t big[65535];
    size_t qlen = sizeof q - 11;                /* drop the OPT's ECS option */
    memcpy(big, q, qlen);
    size_t pad = 5048 - qlen - 4;               /* option header + padding */
    big[qlen - 2] = (uint8_t)((pad + 4) >> 8);  /* OPT RDLENGTH */
    big[qlen - 1] = (uint8_t)(pad + 4);
    big[qlen] = 0; big[qlen + 1] = 12;          /* PADDING */
    big[qlen + 2] = (uint8_t)(pad >> 8);
    big[qlen + 3] = (uint8_t)pad;
    memset(big + qlen + 4, 0, pad);
    qlen += 4 + pad;
    CHECK_EQ_INT(qlen, 5048);
    uint8_t c4[4] = {127, 0, 0, 2};
    CHECK_EQ_INT(tm_engine_answer_in_place(e, big, qlen, sizeof big, c4, 4, 1, &n), TM_RESULT_OK);
    CHECK(big[0] == 0xab && big[1] == 0xcd && (big[2] & 0x80));
    CHECK_EQ_INT(big[3] & 0x0f, 0);
    CHECK_EQ_INT(big[7], 1);
    CHECK(n < 200);
    tm_engine_free(e);
    CHECK_DONE("test_wire");
}
