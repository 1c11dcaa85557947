/*
 * The front of a frozen spindle program (containerd-shim-spin-v2, spindle-node-installer): one ELF
 * file that carries a PyInstaller one-dir bundle and runs it without unpacking it on every start.
 *
 * The file is this launcher, then the bundle (a zlib stream of the archive described below), then a
 * fixed-size trailer. On start the launcher reads the trailer of /proc/self/exe and looks for
 *
 *     <base>/<name>-<first 16 hex of the bundle's sha256>/.complete   holding the whole sha256
 *
 * If it is there, it execs <that dir>/<name> with the same arguments (argv[0] = that path), so a
 * start costs one extra exec (about a millisecond). If not, it unpacks the bundle into
 * <base>/.tmp-<name>-<hash16>-<pid>, syncs it, writes .complete and renames the directory into place:
 * several launchers racing each unpack their own copy and the losers delete theirs, so a directory
 * that is in place is always whole. zlib's adler32 check catches a damaged bundle.
 *
 * <base> is $SPINDLE_BUNDLE_DIR when set (no fallback then); otherwise the hidden directory
 * `.spindle-bundles` next to the executable (a node's /opt/kwasm/bin or /opt/rcm/bin), and when that
 * cannot be written (a read-only directory, a user without rights there), $XDG_CACHE_HOME or
 * ~/.cache, under spindle/bundles.
 *
 * Archive (inflated): "SPXA1\n", then per entry: kind (1 byte: 'D' directory, 'F' file,
 * 'L' symlink), mode (u32), path length (u32), size (u64: file data or link target length), the
 * path (relative, no "..", no NUL) and the data; ends with kind 'E'. Integers are little-endian.
 *
 * Trailer (the last 168 bytes): magic "SPINDLE-BUNDLE-1" (16), bundle offset (u64), bundle size
 * (u64), archive size (u64), sha256 of the bundle bytes as 64 hex digits, the program's name padded
 * with NULs (64 bytes).
 *
 * Built by reconciler/node/freeze.py: cc -O2 -s launcher.c, zlib linked statically.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC "SPINDLE-BUNDLE-1"
#define ARCHIVE_MAGIC "SPXA1\n"
#define TRAILER_SIZE 168
#define NAME_SIZE 64
#define HASH_SIZE 64
#define DIR_HASH 16
#define CHUNK (1 << 16)

struct trailer {
    uint64_t offset, size, unpacked;
    char hash[HASH_SIZE + 1];
    char name[NAME_SIZE + 1];
};

static const char *exe_path;

/* The last failure, reported only if no base works: `start`'s output is what containerd parses. */
static char fail_what[64], fail_where[PATH_MAX + 128];
static int fail_errno;

static void fail(const char *what, const char *where, int err) {
    snprintf(fail_what, sizeof fail_what, "%s", what);
    snprintf(fail_where, sizeof fail_where, "%s", where);
    fail_errno = err;
}

static int report(void) {
    fprintf(stderr, "%s: %s %s: %s\n", exe_path ? exe_path : "spindle launcher", fail_what, fail_where,
            fail_errno ? strerror(fail_errno) : "malformed bundle");
    return 127;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int read_trailer(int fd, struct trailer *t) {
    struct stat st;
    unsigned char raw[TRAILER_SIZE];
    if (fstat(fd, &st) != 0 || st.st_size < TRAILER_SIZE) return -1;
    if (pread(fd, raw, TRAILER_SIZE, st.st_size - TRAILER_SIZE) != TRAILER_SIZE) return -1;
    if (memcmp(raw, MAGIC, 16) != 0) return -1;
    t->offset = le64(raw + 16);
    t->size = le64(raw + 24);
    t->unpacked = le64(raw + 32);
    memcpy(t->hash, raw + 40, HASH_SIZE);
    t->hash[HASH_SIZE] = 0;
    memcpy(t->name, raw + 40 + HASH_SIZE, NAME_SIZE);
    t->name[NAME_SIZE] = 0;
    if (t->offset + t->size + TRAILER_SIZE != (uint64_t)st.st_size) return -1;
    if (!t->name[0] || strchr(t->name, '/')) return -1;
    return 0;
}

/* The bundle directory is whole when its .complete names this bundle's hash. */
static int complete(const char *dir, const char *hash) {
    char path[PATH_MAX], seen[HASH_SIZE + 1];
    if (snprintf(path, sizeof path, "%s/.complete", dir) >= (int)sizeof path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, seen, HASH_SIZE);
    close(fd);
    return n == HASH_SIZE && memcmp(seen, hash, HASH_SIZE) == 0;
}

/* -- inflating reader ------------------------------------------------------------------------- */

struct reader {
    int fd;
    uint64_t pos, end;
    z_stream z;
    unsigned char in[CHUNK], out[CHUNK];
    size_t out_pos, out_len;
    int done;
};

static int reader_fill(struct reader *r) {
    if (r->done) return -1;
    r->z.next_out = r->out;
    r->z.avail_out = CHUNK;
    while (r->z.avail_out == CHUNK) {
        if (r->z.avail_in == 0) {
            size_t want = r->end - r->pos < CHUNK ? (size_t)(r->end - r->pos) : CHUNK;
            if (want == 0) return -1;  /* the stream ended before zlib did */
            ssize_t n = pread(r->fd, r->in, want, (off_t)r->pos);
            if (n <= 0) return -1;
            r->pos += (uint64_t)n;
            r->z.next_in = r->in;
            r->z.avail_in = (uInt)n;
        }
        int rc = inflate(&r->z, Z_NO_FLUSH);
        if (rc == Z_STREAM_END) {
            r->done = 1;
            break;
        }
        if (rc != Z_OK) return -1;  /* Z_DATA_ERROR: a damaged bundle (adler32 or format) */
    }
    r->out_pos = 0;
    r->out_len = CHUNK - r->z.avail_out;
    return r->out_len ? 0 : -1;
}

static int reader_read(struct reader *r, void *buf, size_t n) {
    unsigned char *dst = buf;
    while (n) {
        if (r->out_pos == r->out_len && reader_fill(r) != 0) return -1;
        size_t take = r->out_len - r->out_pos < n ? r->out_len - r->out_pos : n;
        memcpy(dst, r->out + r->out_pos, take);
        r->out_pos += take;
        dst += take;
        n -= take;
    }
    return 0;
}

/* -- unpacking ---------------------------------------------------------------------------------- */

static int safe_relative(const char *path) {
    if (!path[0] || path[0] == '/') return 0;
    for (const char *p = path; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 2 && p[0] == '.' && p[1] == '.') || (len == 1 && p[0] == '.')) return 0;
        p += len + (slash ? 1 : 0);
        if (!slash) break;
    }
    return 1;
}

static int write_all(int fd, const unsigned char *buf, size_t n) {
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Unpack the archive into `dir`: 0, or -1 after fail() (errno 0 there: a damaged bundle). */
static int unpack(int exe_fd, const struct trailer *t, const char *dir) {
    static struct reader r;
    unsigned char head[17];
    char path[PATH_MAX], rel[PATH_MAX], target[PATH_MAX], magic[sizeof ARCHIVE_MAGIC - 1];
    memset(&r, 0, sizeof r);
    r.fd = exe_fd;
    r.pos = t->offset;
    r.end = t->offset + t->size;
    if (inflateInit(&r.z) != Z_OK) {
        fail("cannot unpack", exe_path, ENOMEM);
        return -1;
    }
    int ok = reader_read(&r, magic, sizeof magic) == 0 && memcmp(magic, ARCHIVE_MAGIC, sizeof magic) == 0;
    int io = 0;  /* errno of a failed write, 0 for a malformed archive */
    while (ok) {
        ok = 0;
        if (reader_read(&r, head, 1) != 0) break;
        if (head[0] == 'E') {
            inflateEnd(&r.z);
            return 0;
        }
        if (reader_read(&r, head + 1, 16) != 0) break;
        uint32_t mode = le32(head + 1) & 07777, path_len = le32(head + 5);
        uint64_t size = le64(head + 9);
        if (path_len == 0 || path_len >= sizeof rel || reader_read(&r, rel, path_len) != 0) break;
        rel[path_len] = 0;
        if (strlen(rel) != path_len || !safe_relative(rel)) break;
        if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path) break;
        if (head[0] == 'D') {
            if ((mkdir(path, 0700) != 0 && errno != EEXIST) || chmod(path, mode) != 0) {
                io = errno;
                break;
            }
        } else if (head[0] == 'F') {
            int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            if (fd < 0) {
                io = errno;
                break;
            }
            while (size) {
                if (r.out_pos == r.out_len && reader_fill(&r) != 0) break;
                size_t take = r.out_len - r.out_pos < size ? r.out_len - r.out_pos : (size_t)size;
                if (write_all(fd, r.out + r.out_pos, take) != 0) {
                    io = errno;
                    break;
                }
                r.out_pos += take;
                size -= take;
            }
            if (size == 0 && (fchmod(fd, mode) != 0)) io = errno;
            if (close(fd) != 0 && !io) io = errno;
            if (size || io) break;
        } else if (head[0] == 'L') {
            if (size == 0 || size >= sizeof target || reader_read(&r, target, (size_t)size) != 0) break;
            target[size] = 0;
            if (target[0] == '/' || strlen(target) != size) break;
            if (symlink(target, path) != 0) {
                io = errno;
                break;
            }
        } else {
            break;
        }
        ok = 1;
    }
    inflateEnd(&r.z);
    if (io)
        fail("cannot write", path, io);
    else
        fail("cannot unpack the bundle of", exe_path, 0);
    return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int mkdirs(const char *path) {
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Make <base>/<name>-<hash16> whole: 0, or -1 after fail() (fail_errno 0: a damaged bundle, give
 * up; EACCES, EROFS & co: try the next base). */
static int ensure(int exe_fd, const struct trailer *t, const char *base, const char *dir) {
    char tmp[PATH_MAX], stale[PATH_MAX + 64], marker[PATH_MAX + 16];
    if (mkdirs(base) != 0) {
        fail("cannot create", base, errno);
        return -1;
    }
    if (snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%.*s-%ld", base, t->name, DIR_HASH, t->hash,
                 (long)getpid()) >= (int)sizeof tmp) {
        fail("cannot create", base, ENAMETOOLONG);
        return -1;
    }
    remove_tree(tmp);  /* left by a launcher that had our pid and died */
    if (mkdir(tmp, 0700) != 0) {
        fail("cannot create", tmp, errno);
        return -1;
    }
    if (unpack(exe_fd, t, tmp) != 0) {
        remove_tree(tmp);
        return -1;
    }
    snprintf(marker, sizeof marker, "%s/.complete", tmp);
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    /* everything on disk before the marker is, and the marker before the rename */
    if (fd < 0 || write_all(fd, (const unsigned char *)t->hash, HASH_SIZE) != 0 || syncfs(fd) != 0 ||
        close(fd) != 0 || chmod(tmp, 0755) != 0) {
        fail("cannot write", marker, errno);
        if (fd >= 0) close(fd);
        remove_tree(tmp);
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (rename(tmp, dir) == 0) return 0;
        if (errno != EEXIST && errno != ENOTEMPTY) break;
        if (complete(dir, t->hash)) {  /* another launcher won the race */
            remove_tree(tmp);
            return 0;
        }
        /* a directory without a valid marker (not ours): move it aside and take its place */
        snprintf(stale, sizeof stale, "%s/.stale-%s-%.*s-%ld", base, t->name, DIR_HASH, t->hash,
                 (long)getpid());
        if (rename(dir, stale) == 0) remove_tree(stale);
    }
    fail("cannot rename into", dir, errno);
    remove_tree(tmp);
    return -1;
}

static int bundle_dir(const char *base, const struct trailer *t, char *out, size_t size) {
    return snprintf(out, size, "%s/%s-%.*s", base, t->name, DIR_HASH, t->hash) < (int)size ? 0 : -1;
}

int main(int argc, char **argv) {
    static char self[PATH_MAX], bases[2][PATH_MAX], dir[PATH_MAX], entry[PATH_MAX];
    struct trailer t;
    (void)argc;
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fail("cannot find", "/proc/self/exe", errno);
        return report();
    }
    self[n] = 0;
    exe_path = self;
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read_trailer(fd, &t) != 0) {
        fail("cannot read the bundle of", self, fd < 0 ? errno : 0);
        return report();
    }
    int count = 0;
    const char *env = getenv("SPINDLE_BUNDLE_DIR");
    if (env && env[0]) {
        snprintf(bases[count++], PATH_MAX, "%s", env);
    } else {
        char *slash = strrchr(self, '/');
        snprintf(bases[count++], PATH_MAX, "%.*s/.spindle-bundles", (int)(slash - self), self);
        const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
        if (xdg && xdg[0] == '/')
            snprintf(bases[count++], PATH_MAX, "%s/spindle/bundles", xdg);
        else if (home && home[0] == '/')
            snprintf(bases[count++], PATH_MAX, "%s/.cache/spindle/bundles", home);
    }
    for (int i = 0; i < count; i++) {
        if (bundle_dir(bases[i], &t, dir, sizeof dir) != 0) {
            fail("cannot use", bases[i], ENAMETOOLONG);
            continue;
        }
        if (!complete(dir, t.hash) && ensure(fd, &t, bases[i], dir) != 0) {
            if (fail_errno == 0) break;  /* a damaged bundle: no other base helps */
            continue;
        }
        close(fd);
        if (snprintf(entry, sizeof entry, "%s/%s", dir, t.name) >= (int)sizeof entry) {
            fail("cannot run", dir, ENAMETOOLONG);
            return report();
        }
        argv[0] = entry;
        execv(entry, argv);
        fail("cannot run", entry, errno);
        return report();
    }
    return report();
}
