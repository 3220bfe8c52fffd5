/* systemd's service notifications (sdnotify.h). */
#include "util/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/banned.h"

bool cf_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    if (!path || !*path)
        return false;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(addr.sun_path)) {
        errno = EINVAL;
        return false;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, len);
    if (path[0] == '@')
        addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) >= 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return sent;
}

uint64_t cf_sd_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!usec || !*usec)
        return 0;
    if (pid && *pid) {
        char *end;
        long p = strtol(pid, &end, 10);
        if (*end || p != (long)getpid())
            return 0; /* meant for another process */
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(usec, &end, 10);
    return errno || *end || usec[0] == '-' ? 0 : (uint64_t)v;
}
