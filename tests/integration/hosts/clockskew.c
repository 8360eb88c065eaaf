/* A wall clock that is off: LD_PRELOADed into a worker "host" of tests/integration/hosts,
 * it moves CLOCK_REALTIME (clock_gettime, gettimeofday, time) by FASTQ_TEST_CLOCK_SKEW
 * seconds and nothing else, as on a machine whose clock is wrong: the monotonic clocks
 * stay true (a time namespace cannot move CLOCK_REALTIME; libfaketime also shifts sleeps
 * and breaks Python's). Waits on an absolute CLOCK_REALTIME deadline (a C++
 * condition_variable's wait_until on system_clock, which is pthread_cond_timedwait on a
 * condition variable of the default clock) are moved back, so they last as long as they
 * would on such a machine. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long skew_ns;

__attribute__((constructor)) static void init(void) {
  const char* s = getenv("FASTQ_TEST_CLOCK_SKEW");
  skew_ns = s ? (long long)(atof(s) * 1e9) : 0;
}

static void shift(struct timespec* ts, long long ns) {
  long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + ns;
  ts->tv_sec = (time_t)(t / 1000000000LL);
  ts->tv_nsec = (long)(t % 1000000000LL);
  if (ts->tv_nsec < 0) {
    ts->tv_nsec += 1000000000L;
    ts->tv_sec -= 1;
  }
}

static int is_realtime(clockid_t c) { return c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE; }

int clock_gettime(clockid_t clk, struct timespec* ts) {
  static int (*real)(clockid_t, struct timespec*);
  if (!real) real = (int (*)(clockid_t, struct timespec*))dlsym(RTLD_NEXT, "clock_gettime");
  int r = real(clk, ts);
  if (r == 0 && is_realtime(clk)) shift(ts, skew_ns);
  return r;
}

int gettimeofday(struct timeval* tv, void* tz) {
  (void)tz;
  struct timespec ts;
  int r = clock_gettime(CLOCK_REALTIME, &ts);
  if (r == 0) {
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
  }
  return r;
}

time_t time(time_t* out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out) *out = ts.tv_sec;
  return ts.tv_sec;
}

/* glibc keeps a condition variable's clock in bit 1 of __wrefs (nptl's
 * __PTHREAD_COND_CLOCK_MONOTONIC_MASK): set for CLOCK_MONOTONIC, whose deadlines (Python's
 * own condition variables) must not move. */
int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m, const struct timespec* abstime) {
  static int (*real)(pthread_cond_t*, pthread_mutex_t*, const struct timespec*);
  if (!real) {
    real = (int (*)(pthread_cond_t*, pthread_mutex_t*, const struct timespec*))dlsym(
        RTLD_NEXT, "pthread_cond_timedwait");
  }
  if (c->__data.__wrefs & 2) return real(c, m, abstime);
  struct timespec moved = *abstime;
  shift(&moved, -skew_ns);
  return real(c, m, &moved);
}

int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clk,
                           const struct timespec* abstime) {
  static int (*real)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*);
  if (!real) {
    real = (int (*)(pthread_cond_t*, pthread_mutex_t*, clockid_t, const struct timespec*))dlsym(
        RTLD_NEXT, "pthread_cond_clockwait");
  }
  if (!is_realtime(clk)) return real(c, m, clk, abstime);
  struct timespec moved = *abstime;
  shift(&moved, -skew_ns);
  return real(c, m, clk, &moved);
}
