/* Functions Coffer must never call: unbounded copies and parsers without error reporting. Included
 * last by every .c file of the project (after the system headers it poisons), so a use is a compile
 * error. */
#ifndef CF_UTIL_BANNED_H
#define CF_UTIL_BANNED_H

#define CF_BANNED(func) sorry_##func##_is_banned_in_coffer

#undef strcpy
#define strcpy(x, y) CF_BANNED(strcpy)
#undef strcat
#define strcat(x, y) CF_BANNED(strcat)
#undef sprintf
#define sprintf(...) CF_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) CF_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) CF_BANNED(strtok)
#undef gets
#define gets(x) CF_BANNED(gets)
#undef atoi
#define atoi(x) CF_BANNED(atoi)

#endif
