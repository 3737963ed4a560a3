
/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * The only nginx-aware file of lua-resty-nats. The module has no
 * directives: it exists so that the protocol core (resty_nats_* in
 * resty_nats.h, linked whole into this module) is loaded into every
 * worker with RTLD_GLOBAL, where LuaJIT's ffi.C finds it.
 *
 * It also reads, for the Lua side, the cosocket settings of nginx.conf
 * that apply to a request (ngx_http_lua_nats_ffi_socket_conf): the
 * lua_socket_*_timeout values a cosocket created there starts with, and
 * lua_socket_pool_size. lua-nginx-module's configuration struct is
 * private and changes between releases, so the fields are found through
 * that module's own directive table: each of these directives is an
 * ngx_conf_set_msec_slot or ngx_conf_set_num_slot with the offset of its
 * field.
 *
 * And it tells the Lua side when a request has ended, for what a shared
 * connection holds on a request's behalf (a request-scoped subscription):
 * ngx_http_lua_nats_ffi_on_request_end() adds a cleanup to the request's
 * pool that records an id, ngx_http_lua_nats_ffi_ended() hands the ids
 * recorded since its last call to the connection, which polls it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "resty_nats.h"


static ngx_int_t ngx_http_lua_nats_init_process(ngx_cycle_t *cycle);
static void ngx_http_lua_nats_find_socket_conf(ngx_cycle_t *cycle);

static void ngx_http_lua_nats_request_ended(void *data);
static ngx_int_t ngx_http_lua_nats_record_ended(uint64_t id);

int ngx_http_lua_nats_ffi_socket_conf(ngx_http_request_t *r,
    uint64_t *out);
int ngx_http_lua_nats_ffi_on_request_end(ngx_http_request_t *r,
    uint64_t id);
int ngx_http_lua_nats_ffi_ended(uint64_t *out, int max);


#define NGX_HTTP_LUA_NATS_NCONF  4

/* in the order of ngx_http_lua_nats_ffi_socket_conf's out[] */
static ngx_str_t  ngx_http_lua_nats_conf_names[] = {
    ngx_string("lua_socket_connect_timeout"),
    ngx_string("lua_socket_send_timeout"),
    ngx_string("lua_socket_read_timeout"),
    ngx_string("lua_socket_pool_size")
};


/*
 * per worker: lua-nginx-module's ctx_index (NGX_ERROR: not found) and the
 * offsets of the fields in its location configuration
 */
static ngx_int_t   ngx_http_lua_nats_lua_index = NGX_ERROR;
static size_t      ngx_http_lua_nats_conf_offsets[NGX_HTTP_LUA_NATS_NCONF];
static ngx_uint_t  ngx_http_lua_nats_pool_size_known;

/* per worker: ids of ended requests not yet taken (a FIFO) */
static uint64_t   *ngx_http_lua_nats_ended_ids;
static size_t      ngx_http_lua_nats_ended_n;
static size_t      ngx_http_lua_nats_ended_cap;


static ngx_http_module_t  ngx_http_lua_nats_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_lua_nats_module = {
    NGX_MODULE_V1,
    &ngx_http_lua_nats_module_ctx,         /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_lua_nats_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_lua_nats_init_process(ngx_cycle_t *cycle)
{
    int  v;

    v = resty_nats_version();

    ngx_log_debug3(NGX_LOG_DEBUG_CORE, cycle->log, 0,
                   "lua nats core %d.%d.%d loaded",
                   v / 10000, v / 100 % 100, v % 100);

    (void) v;

    ngx_http_lua_nats_find_socket_conf(cycle);

    return NGX_OK;
}


static void
ngx_http_lua_nats_find_socket_conf(ngx_cycle_t *cycle)
{
    char           *(*want)(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
    ngx_str_t      *name;
    ngx_uint_t      i, k, found;
    ngx_module_t   *m, *lua;
    ngx_command_t  *cmd;

    ngx_http_lua_nats_lua_index = NGX_ERROR;
    ngx_http_lua_nats_pool_size_known = 0;

    lua = NULL;

    for (i = 0; cycle->modules[i] != NULL; i++) {
        m = cycle->modules[i];

        if (m->type == NGX_HTTP_MODULE && m->name != NULL
            && ngx_strcmp(m->name, "ngx_http_lua_module") == 0)
        {
            lua = m;
            break;
        }
    }

    if (lua == NULL || lua->commands == NULL) {
        ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
                      "lua nats: ngx_http_lua_module not found, "
                      "lua_socket_* settings unknown");
        return;
    }

    found = 0;

    for (k = 0; k < NGX_HTTP_LUA_NATS_NCONF; k++) {
        name = &ngx_http_lua_nats_conf_names[k];
        want = (k < 3) ? ngx_conf_set_msec_slot : ngx_conf_set_num_slot;

        for (cmd = lua->commands; cmd->name.len; cmd++) {
            if (cmd->name.len != name->len
                || ngx_strncmp(cmd->name.data, name->data, name->len) != 0)
            {
                continue;
            }

            if (cmd->set != want || cmd->conf != NGX_HTTP_LOC_CONF_OFFSET) {
                break;
            }

            ngx_http_lua_nats_conf_offsets[k] = cmd->offset;
            found |= 1 << k;
            break;
        }
    }

    /* the three timeouts are needed, the pool size is optional */
    if ((found & 7) != 7) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "lua nats: the lua_socket_*_timeout directives of "
                      "ngx_http_lua_module are not recognized");
        return;
    }

    ngx_http_lua_nats_pool_size_known = (found & 8) ? 1 : 0;

    ngx_http_lua_nats_lua_index = lua->ctx_index;
}


/*
 * out[0..2]: the lua_socket_connect/send/read_timeout (ms) in effect for
 * r (a request, or the fake request of a timer: its location's values),
 * out[3]: lua_socket_pool_size (0: unknown). NGX_OK, NGX_DECLINED when
 * the timeouts cannot be known (no lua module, or one whose directives
 * are not the slots expected), NGX_ERROR without r or out.
 */
int
ngx_http_lua_nats_ffi_socket_conf(ngx_http_request_t *r, uint64_t *out)
{
    u_char      *conf;
    size_t      *off;
    ngx_uint_t   k;

    if (r == NULL || out == NULL || r->loc_conf == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_lua_nats_lua_index == NGX_ERROR) {
        return NGX_DECLINED;
    }

    conf = r->loc_conf[ngx_http_lua_nats_lua_index];
    if (conf == NULL) {
        return NGX_DECLINED;
    }

    off = ngx_http_lua_nats_conf_offsets;

    for (k = 0; k < 3; k++) {
        out[k] = *(ngx_msec_t *) (conf + off[k]);
    }

    out[3] = ngx_http_lua_nats_pool_size_known
             ? *(ngx_uint_t *) (conf + off[3]) : 0;

    return NGX_OK;
}


/*
 * Records id when r ends (its pool is destroyed: the request finished,
 * failed, or the client went away and the request was finalized; for a
 * timer, when it returns). NGX_OK, or NGX_ERROR (no r, no memory).
 */
int
ngx_http_lua_nats_ffi_on_request_end(ngx_http_request_t *r, uint64_t id)
{
    ngx_pool_cleanup_t  *cln;

    if (r == NULL || r->pool == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(uint64_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    *(uint64_t *) cln->data = id;
    cln->handler = ngx_http_lua_nats_request_ended;

    return NGX_OK;
}


static void
ngx_http_lua_nats_request_ended(void *data)
{
    if (ngx_http_lua_nats_record_ended(*(uint64_t *) data) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "lua nats: no memory to record an ended request");
    }
}


static ngx_int_t
ngx_http_lua_nats_record_ended(uint64_t id)
{
    size_t     cap;
    uint64_t  *ids;

    if (ngx_http_lua_nats_ended_n == ngx_http_lua_nats_ended_cap) {
        cap = ngx_http_lua_nats_ended_cap ? ngx_http_lua_nats_ended_cap * 2
                                          : 64;
        ids = realloc(ngx_http_lua_nats_ended_ids, cap * sizeof(uint64_t));
        if (ids == NULL) {
            return NGX_ERROR;
        }

        ngx_http_lua_nats_ended_ids = ids;
        ngx_http_lua_nats_ended_cap = cap;
    }

    ngx_http_lua_nats_ended_ids[ngx_http_lua_nats_ended_n++] = id;

    return NGX_OK;
}


/*
 * Moves up to max recorded ids, oldest first, into out; returns how many
 * (0 when none, or when out is NULL or max < 1).
 */
int
ngx_http_lua_nats_ffi_ended(uint64_t *out, int max)
{
    size_t  n, rest;

    if (out == NULL || max < 1 || ngx_http_lua_nats_ended_n == 0) {
        return 0;
    }

    n = ngx_min((size_t) max, ngx_http_lua_nats_ended_n);
    ngx_memcpy(out, ngx_http_lua_nats_ended_ids, n * sizeof(uint64_t));

    rest = ngx_http_lua_nats_ended_n - n;
    if (rest) {
        ngx_memmove(ngx_http_lua_nats_ended_ids,
                    ngx_http_lua_nats_ended_ids + n,
                    rest * sizeof(uint64_t));
    }

    ngx_http_lua_nats_ended_n = rest;

    return (int) n;
}
