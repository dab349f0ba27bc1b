/*
 * Unit tests for the event helpers: status names and the job id rule
 * that every endpoint and the poller share.
 */
#include "check.h"

#include "jobwire/event.h"

static void test_job_id_rule(void)
{
    static const struct {
        const char *id;
        int valid;
    } cases[] = {
        {"t4vq8m2kxhrj60cqz1fb7wn3ca", 1}, {"a", 1}, {"job_01-x", 1}, {"", 0},
        {"a b", 0}, {"../etc", 0}, {"a/b", 0}, {"a%20b", 0}, {"\xc3\xa9", 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        CHECK_REPORT(jw_job_id_valid(cases[i].id, strlen(cases[i].id)) == cases[i].valid,
                     "id \"%s\": expected %d", cases[i].id, cases[i].valid);

    char longest[JW_JOB_ID_MAX + 2];
    memset(longest, 'x', sizeof(longest));
    CHECK_INT(jw_job_id_valid(longest, JW_JOB_ID_MAX), 1);
    CHECK_INT(jw_job_id_valid(longest, JW_JOB_ID_MAX + 1), 0);

    /* Only the given length counts: a NUL inside is an invalid byte. */
    CHECK_INT(jw_job_id_valid("ab\0cd", 5), 0);
    CHECK_INT(jw_job_id_valid("ab\0cd", 2), 1);
}

static void test_status_names(void)
{
    for (int s = JW_STATUS_PENDING; s <= JW_STATUS_CANCELLED; s++) {
        const char *name = jw_status_name((jw_status_t)s);
        CHECK_INT(jw_status_parse(name, strlen(name)), s);
    }
    CHECK_INT(jw_status_parse("runnin", 6), JW_STATUS_UNKNOWN);
    CHECK_INT(jw_status_is_terminal(JW_STATUS_CANCELLED), 1);
    CHECK_INT(jw_status_is_terminal(JW_STATUS_RUNNING), 0);
}

int main(void)
{
    test_job_id_rule();
    test_status_names();
    CHECK_SUMMARY();
}
