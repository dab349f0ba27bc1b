/*
 * Wall-clock time in the two forms jobs and records store: ISO 8601 UTC
 * with microseconds, and milliseconds since the epoch.
 */
#ifndef JOBWIRE_CLOCK_H
#define JOBWIRE_CLOCK_H

/* Writes the current time as "2025-06-10T09:14:02.118304Z" into out. */
void jw_clock_iso_now(char out[48]);

/* Writes a time given in microseconds since the epoch in the same form. */
void jw_clock_iso_from_us(long long us, char out[48]);

/* Returns the current time in ms since the epoch. */
long long jw_clock_wall_ms(void);

#endif
