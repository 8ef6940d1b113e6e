/*
 * The benchmark's reader: THREADS threads each open, read and close FILE in
 * a loop for SECONDS, checking every read returns EXPECT bytes. Prints one
 * JSON line: reads, reads per second, and latency percentiles of one
 * open+read+close, in microseconds.
 *
 *   bench-reader FILE EXPECT THREADS SECONDS
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 2000000

static const char *file;
static long expect;
static double seconds;
static double *samples;
static long sample_count;
static long failures;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *reader(void *arg) {
  (void)arg;
  char buf[65536];
  double end = now_us() + seconds * 1e6;
  double *local = malloc(sizeof(double) * 200000);
  long n = 0, bad = 0;
  while (n < 200000) {
    double start = now_us();
    if (start > end) break;
    int fd = open(file, O_RDONLY);
    long got = 0;
    if (fd >= 0) {
      ssize_t r;
      while ((r = read(fd, buf + got, sizeof(buf) - got)) > 0) got += r;
      close(fd);
    }
    if (got != expect) bad++;
    local[n++] = now_us() - start;
  }
  pthread_mutex_lock(&lock);
  for (long i = 0; i < n && sample_count < MAX_SAMPLES; i++) samples[sample_count++] = local[i];
  failures += bad;
  pthread_mutex_unlock(&lock);
  free(local);
  return NULL;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char *argv[]) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s FILE EXPECT THREADS SECONDS\n", argv[0]);
    return 2;
  }
  file = argv[1];
  expect = atol(argv[2]);
  int threads = atoi(argv[3]);
  seconds = atof(argv[4]);
  samples = malloc(sizeof(double) * MAX_SAMPLES);
  pthread_t tids[64];
  double start = now_us();
  for (int i = 0; i < threads && i < 64; i++) pthread_create(&tids[i], NULL, reader, NULL);
  for (int i = 0; i < threads && i < 64; i++) pthread_join(tids[i], NULL);
  double elapsed = (now_us() - start) / 1e6;
  qsort(samples, sample_count, sizeof(double), cmp);
  double p50 = sample_count ? samples[sample_count / 2] : 0;
  double p99 = sample_count ? samples[(long)(sample_count * 0.99)] : 0;
  printf("{\"reads\":%ld,\"failures\":%ld,\"readsPerSecond\":%.1f,\"p50Us\":%.2f,\"p99Us\":%.2f}\n",
         sample_count, failures, sample_count / elapsed, p50, p99);
  return failures ? 1 : 0;
}
