/*
 * page-cache: evict files from the Linux page cache, and count how much of each is in it.
 * Node has no binding for posix_fadvise or mincore, so test/bench/lib/page-cache.ts compiles this with the
 * machine's cc the first time the bench needs it.
 *
 *   page-cache evict FILE...     write back, drop from the page cache, then print what is still cached
 *   page-cache resident FILE...  print what is cached
 *   page-cache pages FILE...     print what is cached, page by page
 *
 * One line per file: "CACHED_BYTES SIZE_BYTES PATH", or "error ERRNO PATH"; with `pages`, the line is followed
 * by one more holding a '1' for each cached page of the file and a '0' for each page that is not.
 * The exit status is 1 if any file could not be opened or measured.
 *
 * POSIX_FADV_DONTNEED drops only clean pages that no process has mapped: pages of a library that another
 * process has mapped (libc, for one) stay cached, which is why the bench prints what is left.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of the file's pages that are in the page cache (mincore on a mapping that is never touched); with
   `each_page`, also prints them page by page. */
static long long cached_bytes(int fd, off_t size, FILE *each_page) {
  if (size == 0) return 0;
  long page = sysconf(_SC_PAGESIZE);
  void *map = mmap(NULL, size, PROT_NONE, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return -1;
  size_t pages = (size + page - 1) / page;
  unsigned char *vector = malloc(pages);
  long long count = -1;
  if (vector != NULL && mincore(map, size, vector) == 0) {
    count = 0;
    for (size_t i = 0; i < pages; i++) count += vector[i] & 1;
    if (each_page != NULL) {
      for (size_t i = 0; i < pages; i++) vector[i] = (vector[i] & 1) ? '1' : '0';
      fwrite(vector, 1, pages, each_page);
    }
  }
  free(vector);
  munmap(map, size);
  return count < 0 ? -1 : count * page;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "evict") != 0 && strcmp(argv[1], "resident") != 0 && strcmp(argv[1], "pages") != 0)) {
    fprintf(stderr, "usage: page-cache evict|resident|pages FILE...\n");
    return 2;
  }
  int evict = strcmp(argv[1], "evict") == 0;
  int each_page = strcmp(argv[1], "pages") == 0;
  int status = 0;
  for (int i = 2; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      printf("error %d %s\n", errno, argv[i]);
      if (fd >= 0) close(fd);
      status = 1;
      continue;
    }
    /* Dirty pages (a file just written, like a fresh build) are not dropped: write them back first. */
    if (evict) {
      fdatasync(fd);
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    /* The page map goes to a buffer first: the summary line comes before it. */
    char *map_text = NULL;
    size_t map_length = 0;
    FILE *map = each_page ? open_memstream(&map_text, &map_length) : NULL;
    long long cached = cached_bytes(fd, st.st_size, map);
    if (map != NULL) fclose(map);
    if (cached < 0) {
      printf("error %d %s\n", errno, argv[i]);
      status = 1;
    } else {
      printf("%lld %lld %s\n", cached, (long long)st.st_size, argv[i]);
      if (each_page) printf("%.*s\n", (int)map_length, map_text);
    }
    free(map_text);
    close(fd);
  }
  return status;
}
