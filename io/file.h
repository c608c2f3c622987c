/* io/file.h - file reads and writes at an offset on a worker's io_uring.
 *
 * Threading: the ring's owner thread.  Each call queues one READ/WRITE with
 * the caller's token; its completion (token, res, 0) carries the bytes
 * transferred (possibly short, like pread/pwrite) or -errno.
 * Memory: buf must stay valid until the completion; the caller owns the fd
 * (open and close it itself: local opens do not block for long).
 */
#ifndef AXON_IO_FILE_H
#define AXON_IO_FILE_H

#include <stdint.h>

#include "io/uring.h"

/* 0, -EBUSY (SQ full even after a submit) or -EINVAL. */
int ax_io_file_read(ax_io_t *io, int fd, void *buf, uint32_t len, uint64_t off, uint64_t token);
int ax_io_file_write(ax_io_t *io, int fd, const void *buf, uint32_t len, uint64_t off, uint64_t token);
/* fdatasync through the ring: res 0 or -errno. */
int ax_io_file_sync(ax_io_t *io, int fd, uint64_t token);

#endif /* AXON_IO_FILE_H */
