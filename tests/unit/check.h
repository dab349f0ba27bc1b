/*
 * A minimal test helper for the unit tests: CHECK-style macros that print
 * the failing expression with both values, and a summary line.
 * Each test file includes it once and ends main() with CHECK_SUMMARY().
 */
#ifndef JOBWIRE_TESTS_CHECK_H
#define JOBWIRE_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed;
static int check_failed;

#define CHECK_REPORT(ok, ...)                                                                      \
    do {                                                                                           \
        if (ok) {                                                                                  \
            check_passed++;                                                                        \
        } else {                                                                                   \
            check_failed++;                                                                        \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK(cond) CHECK_REPORT((cond), "check failed: %s", #cond)

#define CHECK_INT(actual, expected)                                                                \
    do {                                                                                           \
        long long a_ = (long long)(actual), e_ = (long long)(expected);                            \
        CHECK_REPORT(a_ == e_, "%s: got %lld, expected %lld", #actual, a_, e_);                    \
    } while (0)

#define CHECK_DOUBLE(actual, expected)                                                             \
    do {                                                                                           \
        double a_ = (actual), e_ = (expected);                                                     \
        CHECK_REPORT(fabs(a_ - e_) < 1e-9, "%s: got %.9g, expected %.9g", #actual, a_, e_);        \
    } while (0)

/* Compares two strings; NULL is a distinct value that only equals NULL. */
#define CHECK_STR(actual, expected)                                                                \
    do {                                                                                           \
        const char *a_ = (actual), *e_ = (expected);                                               \
        int ok_ = (a_ == NULL || e_ == NULL) ? a_ == e_ : strcmp(a_, e_) == 0;                     \
        CHECK_REPORT(ok_, "%s: got \"%s\", expected \"%s\"", #actual, a_ ? a_ : "(null)",          \
                     e_ ? e_ : "(null)");                                                          \
    } while (0)

#define CHECK_SUMMARY()                                                                            \
    do {                                                                                           \
        printf("%s: %d passed, %d failed\n", __FILE__, check_passed, check_failed);               \
        return check_failed == 0 ? 0 : 1;                                                          \
    } while (0)

#endif
