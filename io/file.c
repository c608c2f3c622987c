/* io/file.c - file I/O at an offset through the worker's ring.
 *
 * Threading: owner thread.  Memory: the caller's buffers, valid until the
 * completion.  These are plain caller-token operations: their completions
 * go straight to the callback and count in ax_io_pending.
 */
#include "io/file.h"

#include <errno.h>
#include <liburing.h>

int ax_io_file_read(ax_io_t *io, int fd, void *buf, uint32_t len, uint64_t off, uint64_t token)
{
    if (fd < 0 || (!buf && len))
        return -EINVAL;
    struct io_uring_sqe *sqe = ax_io_get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, off);
    ax_io_sqe_token(sqe, token);
    return 0;
}

int ax_io_file_write(ax_io_t *io, int fd, const void *buf, uint32_t len, uint64_t off, uint64_t token)
{
    if (fd < 0 || (!buf && len))
        return -EINVAL;
    struct io_uring_sqe *sqe = ax_io_get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_write(sqe, fd, buf, len, off);
    ax_io_sqe_token(sqe, token);
    return 0;
}

int ax_io_file_sync(ax_io_t *io, int fd, uint64_t token)
{
    if (fd < 0)
        return -EINVAL;
    struct io_uring_sqe *sqe = ax_io_get_sqe(io);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    ax_io_sqe_token(sqe, token);
    return 0;
}
