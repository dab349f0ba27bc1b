/*
 * The dashboard's static files (web/): H2O's file handler after the
 * router on "/", a filter that sets Cache-Control, and gzip for these
 * files only. API responses and event streams are left as they are.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobwire/http.h"
#include "jobwire/log.h"

#ifndef JW_WEB_SOURCE_DIR
#define JW_WEB_SOURCE_DIR "web"
#endif
#ifndef JW_WEB_INSTALL_DIR
#define JW_WEB_INSTALL_DIR "/usr/local/share/jobwire/web"
#endif

/* Assets are not versioned by name, so they are cached briefly and then
 * revalidated with their ETag. index.html is revalidated on every load. */
#define ASSET_MAX_AGE "public, max-age=300"
#define PAGE_CACHE "no-cache"

/* The compress filter's own callback, wrapped by static_compress(). */
static void (*compress_setup)(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot);

static int starts_with(h2o_iovec_t path, const char *prefix)
{
    size_t len = strlen(prefix);
    return path.len >= len && memcmp(path.base, prefix, len) == 0;
}

static int is_exactly(h2o_iovec_t path, const char *name)
{
    return h2o_memis(path.base, path.len, name, strlen(name));
}

int jw_http_static_request(h2o_req_t *req)
{
    h2o_iovec_t path = req->path_normalized;

    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) &&
        !h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return 0;
    if (is_exactly(path, "/api") || starts_with(path, "/api/"))
        return 0;
    return !is_exactly(path, "/healthz") && !is_exactly(path, "/readyz") &&
           !is_exactly(path, "/metrics");
}

static int has_index(const char *dir)
{
    char path[PATH_MAX];
    struct stat st;

    if (snprintf(path, sizeof(path), "%s/index.html", dir) >= (int)sizeof(path))
        return 0;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The directory holding the running binary, or "" when unknown. */
static void exe_dir(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    char *slash;

    out[n > 0 ? n : 0] = '\0';
    slash = strrchr(out, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        out[0] = '\0';
}

/*
 * JOBWIRE_WEB_ROOT when set; else the source tree's web/ for a binary in
 * its CMake build tree; else share/jobwire/web beside the binary's prefix,
 * the configured install directory, and the source tree, in that order.
 */
static int find_web_root(const jw_config_t *cfg, char *out, size_t size)
{
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    struct stat st;

    if (cfg->web_root != NULL) {
        snprintf(out, size, "%s", cfg->web_root);
        return 0;
    }
    exe_dir(dir, sizeof(dir));
    snprintf(probe, sizeof(probe), "%s/CMakeCache.txt", dir);
    if (dir[0] != '\0' && stat(probe, &st) == 0 && has_index(JW_WEB_SOURCE_DIR)) {
        snprintf(out, size, "%s", JW_WEB_SOURCE_DIR);
        return 0;
    }
    snprintf(probe, sizeof(probe), "%s/../share/jobwire/web", dir);
    const char *candidates[] = {probe, JW_WEB_INSTALL_DIR, JW_WEB_SOURCE_DIR};
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (has_index(candidates[i])) {
            snprintf(out, size, "%s", candidates[i]);
            return 0;
        }
    }
    return -1;
}

static void set_cache_control(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (jw_http_static_request(req) && (req->res.status == 200 || req->res.status == 304) &&
        h2o_find_header(&req->res.headers, H2O_TOKEN_CACHE_CONTROL, -1) < 0) {
        ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        int page = ct >= 0 && req->res.headers.entries[ct].value.len >= 9 &&
                   memcmp(req->res.headers.entries[ct].value.base, "text/html", 9) == 0;
        /* A 304 carries no type: the page's own URLs are "/" and "/index.html". */
        if (req->res.status == 304)
            page = is_exactly(req->path_normalized, "/") ||
                   is_exactly(req->path_normalized, "/index.html");
        const char *value = page ? PAGE_CACHE : ASSET_MAX_AGE;
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, value,
                       strlen(value));
    }
    h2o_setup_next_ostream(req, slot);
}

/* gzip only the static files: an event stream must not wait in a compressor. */
static void static_compress(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    if (jw_http_static_request(req))
        compress_setup(self, req, slot);
    else
        h2o_setup_next_ostream(req, slot);
}

static void define_types(h2o_file_handler_t *files)
{
    h2o_mimemap_t *map = h2o_file_get_mimemap(files);
    static const char *const types[][2] = {
        {"html", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"ico", "image/x-icon"},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        h2o_mimemap_define_mimetype(map, types[i][0], types[i][1], NULL);
}

void jw_http_static_register(h2o_pathconf_t *path, const jw_config_t *cfg)
{
    static const char *index_files[] = {"index.html", NULL};
    char root[PATH_MAX];

    if (find_web_root(cfg, root, sizeof(root)) != 0) {
        jw_warn("http", "dashboard not served: no web root with index.html found; set "
                        "JOBWIRE_WEB_ROOT");
        return;
    }
    jw_info("http", "dashboard served at / root=%s", root);

    define_types(h2o_file_register(path, root, index_files, NULL, 0));

    h2o_filter_t *cache = h2o_create_filter(path, sizeof(*cache));
    cache->on_setup_ostream = set_cache_control;

    h2o_compress_args_t args;
    memset(&args, 0, sizeof(args));
    args.min_size = 256;
    args.gzip.quality = 6;
    args.brotli.quality = -1;
    /* H2O 2.2.5 prepends filters, so the compress filter is the one entry
     * that was not there before; look for it rather than assume a slot. */
    h2o_filter_t *before[64];
    size_t count = path->filters.size < 64 ? path->filters.size : 64;
    memcpy(before, path->filters.entries, count * sizeof(before[0]));
    h2o_compress_register(path, &args);
    for (size_t i = 0; i < path->filters.size; i++) {
        h2o_filter_t *f = path->filters.entries[i];
        int known = 0;
        for (size_t j = 0; j < count; j++)
            known |= before[j] == f;
        if (!known) {
            compress_setup = f->on_setup_ostream;
            f->on_setup_ostream = static_compress;
            break;
        }
    }
}
