/*
 * Wall-clock helpers (clock.h). The loop's own clock (uv_now) is
 * monotonic and serves for intervals; these are for stored times.
 */
#include "jobwire/clock.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

void jw_clock_iso_from_us(long long us, char out[48])
{
    time_t sec = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&sec, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(us % 1000000));
}

void jw_clock_iso_now(char out[48])
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    jw_clock_iso_from_us((long long)tv.tv_sec * 1000000 + tv.tv_usec, out);
}

long long jw_clock_wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}
