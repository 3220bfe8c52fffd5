/* systemd's service notifications (the sd_notify(3) protocol, spoken without libsystemd): one
 * datagram of "KEY=value" lines to the AF_UNIX socket NOTIFY_SOCKET names (a name starting with
 * '@' is in the abstract namespace). Outside systemd (no NOTIFY_SOCKET) every call does nothing. */
#ifndef CF_UTIL_SDNOTIFY_H
#define CF_UTIL_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends state ("READY=1\nSTATUS=serving", "WATCHDOG=1", "STOPPING=1"). true when it was sent;
 * false without NOTIFY_SOCKET or when sending failed (errno says why). */
bool cf_sd_notify(const char *state);

/* The watchdog interval systemd asks for (WATCHDOG_USEC, when WATCHDOG_PID is unset or this
 * process), in microseconds; 0 when there is none. Ping with "WATCHDOG=1" at half of it. */
uint64_t cf_sd_watchdog_usec(void);

#endif
