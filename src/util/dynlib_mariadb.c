/* libmariadb, loaded at its first use (util/dynlib.h): the functions of MariaDB's client library
 * the program calls. When it cannot be loaded, each fails as the library does (NULL, non-zero). */
#include <mysql.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

#define MARIADB_FUNCTIONS(F, V, M)                                                                 \
    F(int, mysql_server_init, (int argc, char **argv, char **groups), (argc, argv, groups), 1)     \
    F(MYSQL *, mysql_init, (MYSQL * mysql), (mysql), NULL)                                         \
    F(int, mysql_options, (MYSQL * mysql, enum mysql_option option, const void *arg),              \
      (mysql, option, arg), 1)                                                                     \
    F(MYSQL *, mysql_real_connect,                                                                 \
      (MYSQL * mysql, const char *host, const char *user, const char *passwd, const char *db,      \
       unsigned int port, const char *unix_socket, unsigned long clientflag),                      \
      (mysql, host, user, passwd, db, port, unix_socket, clientflag), NULL)                        \
    V(mysql_close, (MYSQL * sock), (sock))                                                         \
    F(unsigned int, mysql_errno, (MYSQL * mysql), (mysql), 2000 /* CR_UNKNOWN_ERROR */)            \
    F(const char *, mysql_error, (MYSQL * mysql), (mysql), "libmariadb could not be loaded")       \
    F(int, mysql_real_query, (MYSQL * mysql, const char *q, unsigned long length),                 \
      (mysql, q, length), 1)                                                                       \
    F(MYSQL_RES *, mysql_store_result, (MYSQL * mysql), (mysql), NULL)                             \
    F(MYSQL_ROW, mysql_fetch_row, (MYSQL_RES * result), (result), NULL)                            \
    V(mysql_free_result, (MYSQL_RES * result), (result))                                           \
    F(unsigned long, mysql_real_escape_string,                                                     \
      (MYSQL * mysql, char *to, const char *from, unsigned long length),                           \
      (mysql, to, from, length), (unsigned long)-1)

CF_DYNLIB_DEFINE(cf_lib_mariadb, "libmariadb", "libmariadb.so.3", MARIADB_FUNCTIONS)
