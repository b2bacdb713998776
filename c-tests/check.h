/* Tiny assertion macros for the C harness: print where and exit non-zero. */
#ifndef TM_CHECK_H
#define TM_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                       \
    do {                                                                         \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);          \
        if (check_a_ != check_b_) {                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n",     \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);             \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define CHECK_EQ_STR(a, b)                                                       \
    do {                                                                         \
        const char *check_a_ = (a), *check_b_ = (b);                             \
        if (check_a_ == NULL || check_b_ == NULL || strcmp(check_a_, check_b_)) { \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
                    __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",  \
                    check_b_ ? check_b_ : "(null)");                             \
            check_failures++;                                                    \
        }                                                                        \
    } while (0)

#define CHECK_DONE(name)                                                         \
    do {                                                                         \
        if (check_failures) {                                                    \
            fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);   \
            return 1;                                                            \
        }                                                                        \
        printf("%s: ok\n", name);                                                \
        return 0;                                                                \
    } while (0)

#endif
