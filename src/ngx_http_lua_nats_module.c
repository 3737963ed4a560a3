
/*
 * Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
 *
 * The only nginx-aware file of lua-resty-nats. The module has no
 * directives: it exists so that the protocol core (resty_nats_* in
 * resty_nats.h, linked whole into this module) is loaded into every
 * worker with RTLD_GLOBAL, where LuaJIT's ffi.C finds it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "resty_nats.h"


static ngx_int_t ngx_http_lua_nats_init_process(ngx_cycle_t *cycle);


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

    return NGX_OK;
}
