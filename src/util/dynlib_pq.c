/* libpq, loaded at its first use (util/dynlib.h): the functions of libpq the program calls. When it
 * cannot be loaded, each fails as libpq does without a connection (NULL, CONNECTION_BAD, -1, 0). */
#include <libpq-fe.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

#define PQ_FUNCTIONS(F, V, M)                                                                      \
    F(PGconn *, PQconnectdbParams,                                                                 \
      (const char *const *keywords, const char *const *values, int expand_dbname),                 \
      (keywords, values, expand_dbname), NULL)                                                     \
    V(PQfinish, (PGconn * conn), (conn))                                                           \
    F(ConnStatusType, PQstatus, (const PGconn *conn), (conn), CONNECTION_BAD)                      \
    F(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn), (conn), PQTRANS_UNKNOWN) \
    F(int, PQserverVersion, (const PGconn *conn), (conn), 0)                                       \
    F(char *, PQerrorMessage, (const PGconn *conn), (conn), "libpq could not be loaded")           \
    F(int, PQsocket, (const PGconn *conn), (conn), -1)                                             \
    F(PQnoticeProcessor, PQsetNoticeProcessor, (PGconn * conn, PQnoticeProcessor proc, void *arg), \
      (conn, proc, arg), NULL)                                                                     \
    F(PGresult *, PQexec, (PGconn * conn, const char *query), (conn, query), NULL)                 \
    F(PGresult *, PQexecParams,                                                                    \
      (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,                     \
       const char *const *paramValues, const int *paramLengths, const int *paramFormats,           \
       int resultFormat),                                                                          \
      (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat), \
      NULL)                                                                                        \
    F(int, PQsendQuery, (PGconn * conn, const char *query), (conn, query), 0)                      \
    F(int, PQsendQueryParams,                                                                      \
      (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,                     \
       const char *const *paramValues, const int *paramLengths, const int *paramFormats,           \
       int resultFormat),                                                                          \
      (conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat), \
      0)                                                                                           \
    F(int, PQsendPrepare,                                                                          \
      (PGconn * conn, const char *stmtName, const char *query, int nParams,                        \
       const Oid *paramTypes),                                                                     \
      (conn, stmtName, query, nParams, paramTypes), 0)                                             \
    F(int, PQsendQueryPrepared,                                                                    \
      (PGconn * conn, const char *stmtName, int nParams, const char *const *paramValues,           \
       const int *paramLengths, const int *paramFormats, int resultFormat),                        \
      (conn, stmtName, nParams, paramValues, paramLengths, paramFormats, resultFormat), 0)         \
    F(PGresult *, PQgetResult, (PGconn * conn), (conn), NULL)                                      \
    F(int, PQisBusy, (PGconn * conn), (conn), 0)                                                   \
    F(int, PQconsumeInput, (PGconn * conn), (conn), 0)                                             \
    F(ExecStatusType, PQresultStatus, (const PGresult *res), (res), PGRES_FATAL_ERROR)             \
    F(char *, PQresultErrorField, (const PGresult *res, int fieldcode), (res, fieldcode), NULL)    \
    F(int, PQntuples, (const PGresult *res), (res), 0)                                             \
    F(char *, PQfname, (const PGresult *res, int field_num), (res, field_num), NULL)               \
    F(Oid, PQftype, (const PGresult *res, int field_num), (res, field_num), 0)                     \
    F(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num),                       \
      (res, tup_num, field_num), NULL)                                                             \
    F(int, PQgetlength, (const PGresult *res, int tup_num, int field_num),                         \
      (res, tup_num, field_num), 0)                                                                \
    F(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num),                         \
      (res, tup_num, field_num), 1)                                                                \
    F(char *, PQcmdTuples, (PGresult * res), (res), NULL)                                          \
    V(PQclear, (PGresult * res), (res))                                                            \
    F(char *, PQescapeLiteral, (PGconn * conn, const char *str, size_t len), (conn, str, len),     \
      NULL)                                                                                        \
    F(char *, PQescapeIdentifier, (PGconn * conn, const char *str, size_t len), (conn, str, len),  \
      NULL)                                                                                        \
    F(char *, PQencryptPasswordConn,                                                               \
      (PGconn * conn, const char *passwd, const char *user, const char *algorithm),                \
      (conn, passwd, user, algorithm), NULL)                                                       \
    V(PQfreemem, (void *ptr), (ptr))

CF_DYNLIB_DEFINE(cf_lib_pq, "libpq", "libpq.so.5", PQ_FUNCTIONS)
