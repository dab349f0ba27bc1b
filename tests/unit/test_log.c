/*
 * Unit tests of log.c: level names and the per-line limit that keeps an
 * outage from writing one warning per request.
 */
#include "check.h"
#include "jobwire/log.h"

static void test_levels(void)
{
    CHECK_INT(jw_log_parse_level("debug"), JW_LOG_DEBUG);
    CHECK_INT(jw_log_parse_level("error"), JW_LOG_ERROR);
    CHECK_INT(jw_log_parse_level("verbose"), -1);
}

static void test_limit_holds_back_repeats(void)
{
    jw_log_limit_t limit = {0, 0};
    unsigned long long held = 99;

    CHECK_INT(jw_log_allow(&limit, 60000, &held), 1);
    CHECK_INT(held, 0);
    for (int i = 0; i < 5; i++)
        CHECK_INT(jw_log_allow(&limit, 60000, &held), 0);
    CHECK_INT(limit.held, 5);

    /* Once the interval is over, the next line reports what was held back. */
    limit.next_ms = 0;
    CHECK_INT(jw_log_allow(&limit, 60000, &held), 1);
    CHECK_INT(held, 5);
    CHECK_INT(limit.held, 0);
}

int main(void)
{
    test_levels();
    test_limit_holds_back_repeats();
    CHECK_SUMMARY();
}
