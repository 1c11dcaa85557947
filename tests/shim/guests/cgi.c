/* A WAGI guest in C (WASI preview 1, wasi-libc) for the shim's tests: a plain CGI program.
 *
 * It always reads the whole request body from stdin first (as a CGI program must before it
 * answers), then dispatches on PATH_INFO:
 *   /echo      the body written back, with X-Body-Length and X-Body-Crc32 headers
 *   /echo-crlf the same with the header lines ended by CRLF
 *   /created   "Status: 201 Created", a custom header, headers ended by CRLF
 *   /redirect  only a Location header (the host turns that into a 302)
 *   /log       two lines on stderr (the guest log), one without its newline
 *   /file      /data/hello.txt from the component's `files` (preopened read-only at "/"),
 *              then whether creating /data/new.txt, or reading /etc/passwd through "..", was allowed
 *   /exit      exit status 3 after printing headers (the host must answer 500)
 *   /nohead    output without the blank line that ends the CGI headers
 *   anything else: a text report of the CGI environment, argv and the body (length, CRC-32)
 *
 * Build (see build.sh): clang-14 --target=wasm32-wasi --sysroot=/usr -O2 \
 *   -fuse-ld=/usr/bin/wasm-ld-14 -Wl,--strip-all cgi.c -o cgi.wasm
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

/* the same CRC-32 as zlib.crc32, so the test can check the guest saw every byte in order */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

struct body {
    unsigned char *data;
    size_t len;
};

static struct body read_stdin(void) {
    struct body b = {NULL, 0};
    size_t cap = 0;
    for (;;) {
        if (cap - b.len < 65536) {
            cap = cap ? cap * 2 : 65536;
            b.data = realloc(b.data, cap);
            if (!b.data) {
                fputs("cgi.c: out of memory reading the body\n", stderr);
                exit(2);
            }
        }
        size_t got = fread(b.data + b.len, 1, cap - b.len, stdin);
        b.len += got;
        if (got == 0)
            break;
    }
    return b;
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v ? v : fallback;
}

static int route_echo(struct body b, const char *eol) {
    printf("Content-Type: application/octet-stream%s", eol);
    printf("X-Body-Length: %zu%s", b.len, eol);
    printf("X-Body-Crc32: %08x%s%s", (unsigned)crc32_of(b.data, b.len), eol, eol);
    fwrite(b.data, 1, b.len, stdout);
    return 0;
}

static int route_created(void) {
    fputs("Status: 201 Created\r\n", stdout);
    fputs("Content-Type: text/plain\r\n", stdout);
    fputs("X-Custom: made in C: yes\r\n\r\n", stdout);
    fputs("created\n", stdout);
    return 0;
}

static int route_redirect(void) {
    printf("Location: %s/info\n\n", env_or("SCRIPT_NAME", ""));
    return 0;
}

static int route_log(void) {
    fprintf(stderr, "c guest says hello on stderr, method=%s\n", env_or("REQUEST_METHOD", "?"));
    fputs("second line without a newline", stderr);
    printf("Content-Type: text/plain\n\nlogged\n");
    return 0;
}

static int route_file(void) {
    printf("Content-Type: text/plain\n\n");
    FILE *f = fopen("/data/hello.txt", "r");
    if (!f) {
        printf("open failed: %s\n", strerror(errno));
    } else {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
    }
    FILE *w = fopen("/data/new.txt", "w");
    if (w) {
        fclose(w);
        printf("write=allowed\n");
    } else {
        printf("write=denied\n");
    }
    /* nothing outside the component's files: not the host's /etc through a ".." */
    FILE *e = fopen("/../../../../etc/passwd", "r");
    printf("escape=%s\n", e ? "allowed" : "denied");
    if (e)
        fclose(e);
    return 0;
}

static int route_info(int argc, char **argv, struct body b) {
    static const char *vars[] = {
        "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "X_FULL_URL",
        "X_MATCHED_ROUTE", "SERVER_PROTOCOL", "CONTENT_LENGTH", "CONTENT_TYPE",
        "HTTP_X_TEST", "FROM_MANIFEST",
    };
    printf("Content-Type: text/plain; charset=utf-8\n");
    printf("X-Lang: c\n\n");
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        printf("%s=%s\n", vars[i], env_or(vars[i], "(unset)"));
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    printf("body_length=%zu\n", b.len);
    printf("body_crc32=%08x\n", (unsigned)crc32_of(b.data, b.len));
    return 0;
}

int main(int argc, char **argv) {
    crc_init();
    struct body b = read_stdin();
    const char *path = env_or("PATH_INFO", "");
    if (strcmp(path, "/echo") == 0)
        return route_echo(b, "\n");
    if (strcmp(path, "/echo-crlf") == 0)
        return route_echo(b, "\r\n");
    if (strcmp(path, "/created") == 0)
        return route_created();
    if (strcmp(path, "/redirect") == 0)
        return route_redirect();
    if (strcmp(path, "/log") == 0)
        return route_log();
    if (strcmp(path, "/file") == 0)
        return route_file();
    if (strcmp(path, "/exit") == 0) {
        printf("Content-Type: text/plain\n\nabout to fail\n");
        return 3;
    }
    if (strcmp(path, "/nohead") == 0) {
        printf("just a body, no headers\n");
        return 0;
    }
    return route_info(argc, argv, b);
}
