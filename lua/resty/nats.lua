-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats: a NATS client for lua-nginx-module on cosockets, with the
-- protocol (parser, framer, subscription table) in the C++ core of
-- ngx_http_lua_nats_module, called through LuaJIT's FFI.

local ffi = require "ffi"

local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_copy = ffi.copy
local ffi_gc = ffi.gc
local tcp = ngx.socket.tcp
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local type = type
local tostring = tostring
local tonumber = tonumber
local setmetatable = setmetatable
local error = error
local pcall = pcall
local pairs = pairs
local ipairs = ipairs
local next = next
local str_lower = string.lower
local str_find = string.find
local str_sub = string.sub
local str_byte = string.byte
local tab_sort = table.sort
local tab_concat = table.concat
local math_random = math.random


local _M = { _VERSION = "0.2.0" }
local mt = { __index = _M }


-- mirrors src/resty_nats.h between "cdef begin" and "cdef end"
-- (ctest cdef_in_sync checks that the two stay identical)
if not pcall(ffi.typeof, "resty_nats_event_t") then
    ffi.cdef[[

enum {
    RESTY_NATS_DONE     = 1,      /* subs_deliver(), subs_set_max() */
    RESTY_NATS_OK       = 0,
    RESTY_NATS_ERROR    = -1,
    RESTY_NATS_AGAIN    = -2,
    RESTY_NATS_DECLINED = -5
};

/* event types returned by resty_nats_parser_next() */
enum {
    RESTY_NATS_EV_NONE = 0,
    RESTY_NATS_EV_INFO = 1,   /* payload: the JSON object text */
    RESTY_NATS_EV_MSG  = 2,   /* subject, sid, reply, payload */
    RESTY_NATS_EV_HMSG = 3,   /* MSG fields + headers, status */
    RESTY_NATS_EV_PING = 4,
    RESTY_NATS_EV_PONG = 5,
    RESTY_NATS_EV_OK   = 6,   /* +OK */
    RESTY_NATS_EV_ERR  = 7    /* payload: the text between the quotes */
};

/*
 * HMSG status when the header block inside a well-framed HMSG is not
 * valid (ADR-4): the message is still delivered, with its payload, no
 * headers, and the reason in description (static text). The parser stays
 * usable: any publisher can send such a block through the server.
 */
enum {
    RESTY_NATS_STATUS_INVALID_HEADERS = -1
};

/* limits */
enum {
    RESTY_NATS_MAX_CONTROL_LINE = 4096,      /* bytes, CRLF included */
    RESTY_NATS_DEFAULT_MAX_PAYLOAD = 1048576,
    RESTY_NATS_MAX_INFO_LINE = 1048576
};

/* a byte string that is not NUL-terminated; data may be NULL if len is 0 */
typedef struct resty_nats_str_s {
    const char  *data;
    size_t       len;
} resty_nats_str_t;

typedef struct resty_nats_header_s {
    resty_nats_str_t  name;
    resty_nats_str_t  value;
} resty_nats_header_t;

/*
 * One server operation. Every pointer points into parser-owned memory and
 * is valid until the next call of resty_nats_parser_feed(),
 * resty_nats_parser_next(), resty_nats_parser_reset() or
 * resty_nats_parser_free() on the same parser.
 */
typedef struct resty_nats_event_s {
    int                         type;       /* RESTY_NATS_EV_* */
    int                         status;     /* HMSG: NATS/1.0 status, 0,
                                               or ..._INVALID_HEADERS */
    uint64_t                    sid;        /* numeric sid, or UINT64_MAX */
    resty_nats_str_t            subject;
    resty_nats_str_t            sid_str;
    resty_nats_str_t            reply;      /* len 0 when absent */
    resty_nats_str_t            payload;    /* see the event types */
    resty_nats_str_t            description; /* HMSG status text */
    const resty_nats_header_t  *headers;    /* HMSG: in wire order */
    size_t                      nheaders;
} resty_nats_event_t;

/*
 * Fields of an INFO object that a client acts on. Strings point into
 * parser-owned storage, valid like event pointers. connect_urls holds the
 * INFO "connect_urls" array joined with "," (empty when absent).
 * Booleans and integers absent from the JSON are 0; max_payload absent
 * is 0 (the caller keeps its default).
 */
typedef struct resty_nats_info_s {
    resty_nats_str_t  server_id;
    resty_nats_str_t  server_name;
    resty_nats_str_t  version;
    resty_nats_str_t  nonce;
    resty_nats_str_t  connect_urls;
    int64_t           max_payload;
    int64_t           proto;
    uint64_t          client_id;
    int               headers;
    int               auth_required;
    int               tls_required;
    int               tls_available;
    int               tls_verify;
    int               ldm;
    int               jetstream;
} resty_nats_info_t;

typedef struct resty_nats_parser_s resty_nats_parser_t;

/*
 * CONNECT options. A string with data == NULL is left out of the JSON.
 * Booleans are 0 or 1; a negative value leaves the field out.
 */
typedef struct resty_nats_connect_opts_s {
    int               verbose;
    int               pedantic;
    int               tls_required;
    int               echo;
    int               headers;
    int               no_responders;
    int               protocol;         /* sent as a number; < 0: left out */
    resty_nats_str_t  lang;
    resty_nats_str_t  version;
    resty_nats_str_t  name;
    resty_nats_str_t  user;
    resty_nats_str_t  pass;
    resty_nats_str_t  auth_token;
    resty_nats_str_t  jwt;
    resty_nats_str_t  nkey;
    resty_nats_str_t  sig;
} resty_nats_connect_opts_t;

typedef struct resty_nats_subs_s resty_nats_subs_t;

/* the core's version as MAJOR * 10000 + MINOR * 100 + PATCH */
int resty_nats_version(void);

/*
 * Parser: a streaming, pull-style parser of server operations.
 * new: max_payload bounds MSG/HMSG sizes (0 means the default);
 * stores the parser in *out, returns RESTY_NATS_OK or RESTY_NATS_ERROR
 * (no memory).
 */
int resty_nats_parser_new(resty_nats_parser_t **out, size_t max_payload);
void resty_nats_parser_free(resty_nats_parser_t *p);
/* drops buffered bytes and any sticky error */
void resty_nats_parser_reset(resty_nats_parser_t *p);
/* new MSG/HMSG bound, e.g. from INFO max_payload; 0 restores the default */
int resty_nats_parser_set_max_payload(resty_nats_parser_t *p,
    size_t max_payload);
/*
 * Copies len bytes into the parser. Returns RESTY_NATS_OK, or
 * RESTY_NATS_ERROR when the parser holds a sticky error (the bytes are
 * dropped) or is out of memory.
 */
int resty_nats_parser_feed(resty_nats_parser_t *p, const char *data,
    size_t len, char *err, size_t *errlen);
/*
 * Takes the next complete operation: RESTY_NATS_OK and *ev filled;
 * RESTY_NATS_AGAIN when more bytes are needed (ev->type is
 * RESTY_NATS_EV_NONE); RESTY_NATS_ERROR on a protocol error, which is
 * sticky: every later call returns it again with the same message until
 * reset. A protocol error means the connection must be closed.
 */
int resty_nats_parser_next(resty_nats_parser_t *p, resty_nats_event_t *ev,
    char *err, size_t *errlen);
/* bytes fed but not yet returned as events */
size_t resty_nats_parser_buffered(const resty_nats_parser_t *p);
/*
 * Decodes the JSON of an INFO event (ev->payload) into *out.
 * RESTY_NATS_ERROR with err set if the text is not a JSON object.
 */
int resty_nats_parser_info(resty_nats_parser_t *p, const char *json,
    size_t len, resty_nats_info_t *out, char *err, size_t *errlen);

/*
 * Validation (no I/O). Each returns RESTY_NATS_OK or RESTY_NATS_ERROR with
 * a message naming the problem.
 * subject: a PUB subject or a reply subject: dot-separated non-empty
 *          tokens of bytes 33-126 (bytes 128-255 of UTF-8 text are
 *          allowed too); the tokens "*" and ">" are refused (they are
 *          wildcards), "*" or ">" inside a longer token is literal.
 * sub_subject: as subject, and "*" may be a token, ">" may be the last.
 * queue: non-empty, no byte below 33 nor 127 (dots and UTF-8 allowed).
 */
int resty_nats_validate_subject(const char *s, size_t len, char *err,
    size_t *errlen);
int resty_nats_validate_sub_subject(const char *s, size_t len, char *err,
    size_t *errlen);
int resty_nats_validate_queue(const char *s, size_t len, char *err,
    size_t *errlen);
/* 1 when the subject matches the SUB pattern ("*", ">"), else 0 */
int resty_nats_subject_matches(const char *pattern, size_t plen,
    const char *subject, size_t slen);

/* Framers: see the conventions at the top of this file. */
int resty_nats_frame_connect(char *buf, size_t size, size_t *n,
    const resty_nats_connect_opts_t *opts, char *err, size_t *errlen);
/*
 * "PUB <subject> [reply] <payload_len>\r\n": the control line only; the
 * caller sends the payload and "\r\n" after it. Refused: invalid subject
 * or reply, payload_len > max_payload (when max_payload > 0), a control
 * line over RESTY_NATS_MAX_CONTROL_LINE.
 */
int resty_nats_frame_pub(char *buf, size_t size, size_t *n,
    const char *subject, size_t subject_len, const char *reply,
    size_t reply_len, size_t payload_len, size_t max_payload, char *err,
    size_t *errlen);
/*
 * "HPUB <subject> [reply] <hdr_len> <total_len>\r\n" followed by the whole
 * header block ("NATS/1.0\r\n", one "Name: value\r\n" per header in order,
 * "\r\n"). The caller sends the payload and "\r\n" after it. Refused as
 * for PUB, plus: a header name empty or with a byte outside 33-126 or a
 * ':'; a value with CR or LF; hdr_len + payload_len > max_payload.
 */
int resty_nats_frame_hpub(char *buf, size_t size, size_t *n,
    const char *subject, size_t subject_len, const char *reply,
    size_t reply_len, const resty_nats_header_t *headers, size_t nheaders,
    size_t payload_len, size_t max_payload, char *err, size_t *errlen);
/* "SUB <subject> [queue] <sid>\r\n" */
int resty_nats_frame_sub(char *buf, size_t size, size_t *n,
    const char *subject, size_t subject_len, const char *queue,
    size_t queue_len, uint64_t sid, char *err, size_t *errlen);
/* "UNSUB <sid>[ <max_msgs>]\r\n"; max_msgs 0 means none */
int resty_nats_frame_unsub(char *buf, size_t size, size_t *n, uint64_t sid,
    uint64_t max_msgs, char *err, size_t *errlen);

/*
 * Subscription table: sid allocation and auto-unsubscribe counts for one
 * connection. sids start at 1 and are never reused by one table.
 */
int resty_nats_subs_new(resty_nats_subs_t **out);
void resty_nats_subs_free(resty_nats_subs_t *t);
/* registers a subscription; stores its sid in *sid */
int resty_nats_subs_add(resty_nats_subs_t *t, const char *subject,
    size_t subject_len, const char *queue, size_t queue_len,
    uint64_t *sid, char *err, size_t *errlen);
/*
 * For a connection taken from the pool. resty_nats_subs_reserve(): the
 * sids the table allocates from then on start at next_sid at least (the
 * value resty_nats_subs_next_sid() gave before pooling), so that no sid is
 * used twice on one connection (no-op if t is NULL).
 * resty_nats_subs_restore(): registers a live subscription subject under
 * the sid it already has there; refused (RESTY_NATS_ERROR): an invalid
 * subject; sid 0, not below the next sid, or already in the table.
 */
void resty_nats_subs_reserve(resty_nats_subs_t *t, uint64_t next_sid);
int resty_nats_subs_restore(resty_nats_subs_t *t, const char *subject,
    size_t subject_len, uint64_t sid, char *err, size_t *errlen);
/* the sid that the next resty_nats_subs_add() allocates (0 if t is NULL) */
uint64_t resty_nats_subs_next_sid(const resty_nats_subs_t *t);
/*
 * The subscription ends after max deliveries in all, counted from its SUB
 * (as the server counts "UNSUB <sid> <max>"); max 0: no limit.
 * RESTY_NATS_OK; RESTY_NATS_DONE when max deliveries were already counted
 * (the subscription is removed at once); RESTY_NATS_DECLINED if the sid
 * is unknown.
 */
int resty_nats_subs_set_max(resty_nats_subs_t *t, uint64_t sid,
    uint64_t max);
/*
 * Counts one delivery for sid. RESTY_NATS_OK: deliver it, the
 * subscription stays. RESTY_NATS_DONE (1): deliver it, it was the last one
 * and the subscription is removed. RESTY_NATS_DECLINED: unknown sid (for
 * example after UNSUB): drop the message quietly.
 */
int resty_nats_subs_deliver(resty_nats_subs_t *t, uint64_t sid);
/* RESTY_NATS_OK, or RESTY_NATS_DECLINED if the sid is unknown */
int resty_nats_subs_remove(resty_nats_subs_t *t, uint64_t sid);
size_t resty_nats_subs_count(const resty_nats_subs_t *t);
/*
 * The subject and queue of a live subscription, valid until it is
 * removed or the table is freed; RESTY_NATS_DECLINED if unknown.
 */
int resty_nats_subs_get(const resty_nats_subs_t *t, uint64_t sid,
    resty_nats_str_t *subject, resty_nats_str_t *queue);

/*
 * Fills buf with len characters of [A-Za-z0-9] drawn from the kernel's
 * CSPRNG (getrandom(2), a page at a time into a per-thread buffer that a
 * forked child finds empty: no two processes share a sequence). For
 * unpredictable inbox names. RESTY_NATS_ERROR if no randomness is
 * available.
 */
int resty_nats_random_token(char *buf, size_t len);

]]
end


local function load_core()
    local ok = pcall(function() return ffi.C.resty_nats_version end)
    if ok then
        return ffi.C
    end

    -- outside nginx (plain LuaJIT), or nginx without our module loaded
    local path = os.getenv("RESTY_NATS_LIB") or "libresty_nats.so"
    local lib
    ok, lib = pcall(ffi.load, path)
    if ok then
        return lib
    end

    error("resty.nats: the NATS core is not loaded: add 'load_module "
          .. "modules/ngx_http_lua_nats_module.so;' to nginx.conf (" .. lib
          .. ")", 2)
end

local C = load_core()

-- nginx.conf's cosocket settings where the caller runs (its location; a
-- timer's: where it was created), read by the nginx module: the
-- lua_socket_connect/send/read_timeout a cosocket created there starts
-- with, and lua_socket_pool_size. nil where they cannot be known (plain
-- LuaJIT, no lua-resty-core, an nginx module without the call).
local socket_conf, get_request
do
    local ok, base = pcall(require, "resty.core.base")
    if ok and type(base) == "table" and base.get_request then
        get_request = base.get_request
        pcall(ffi.cdef, [[
int ngx_http_lua_nats_ffi_socket_conf(void *r, uint64_t *out);
]])
        if pcall(function()
                     return ffi.C.ngx_http_lua_nats_ffi_socket_conf
                 end)
        then
            socket_conf = ffi.C.ngx_http_lua_nats_ffi_socket_conf
        end
    end
end

-- optional: concurrent synchronous requests on one object (lua-resty-core)
local semaphore
do
    local ok, sema = pcall(require, "ngx.semaphore")
    if ok then
        semaphore = sema
    end
end


local OK = 0
local AGAIN = -2
local DONE = 1

local EV_INFO = 1
local EV_MSG = 2
local EV_HMSG = 3
local EV_PING = 4
local EV_PONG = 5
local EV_OK = 6
local EV_ERR = 7
local STATUS_INVALID_HEADERS = -1   -- RESTY_NATS_STATUS_INVALID_HEADERS

local READ_SIZE = 65536
-- lua_socket_*_timeout's default: the timeouts where they cannot be read
local DEFAULT_TIMEOUT = 60000
local ERRBUF_SIZE = 256
local FRAME_SIZE = 4096
local INBOX_TOKEN_LEN = 22
local REPLY_TOKEN_LEN = 12              -- [A-Za-z0-9]: 71 bits

-- Scratch space for control lines and tokens, shared by every object of
-- the worker, as lua-resty-core's get_string_buf: each use fills it and
-- copies it out into a Lua string with no yield in between, so it never
-- carries anything from one call (or request) to the next. One per object
-- was a 4 KiB allocation per connect for the garbage collector.
local scratch = ffi_new("char[?]", FRAME_SIZE)
local scratch_size = FRAME_SIZE
local scratch_u64 = ffi_new("uint64_t[4]")    -- the same, for numbers

-- a table with room for an object's fields (table.new: no rehash as
-- connect fills it in), or a plain table without LuaJIT's extension
local new_tab
do
    local ok, tn = pcall(require, "table.new")
    new_tab = ok and tn or function() return {} end
end
local OBJECT_FIELDS = 40
local DEFAULT_POOL_SIZE = 30            -- lua_socket_pool_size's default
local DEFAULT_MAX_PAYLOAD = 1048576
local DEFAULT_REQUEST_TIMEOUT = 5000    -- ms, at most: see request()
local DEFAULT_PORT = 4222
local SERVER_DOWN_TIME = 2              -- s a failed server is tried last

local PING = "PING\r\n"
local PONG = "PONG\r\n"
local CRLF = "\r\n"


-- Per-worker caches of server facts, never of request state: cluster
-- members learnt from INFO connect_urls per seed list, and servers that
-- failed recently (tried last for a few seconds).
local learned_urls = {}
local down_until = {}

-- Pool slots, per worker and per pool name. A pooled connection keeps its
-- request inbox subscription, so that the next checkout's request is one
-- PUB (no SUB, no UNSUB, no change to the server's subscription index).
-- What the next user needs to know of it (inbox, sids used, server info)
-- must then follow the connection into the pool; a cosocket carries
-- nothing of ours, so every connection is pooled under a pool name of its
-- own, "<name>#<k>", holding one connection at most, and slot k remembers
-- its state. A checkout takes a free slot (the most recently released
-- first) and, through the cosocket pool of that name, the connection
-- pooled there if it still lives; a fresh connection in the slot starts a
-- fresh state. Slots are returned at set_keepalive and close, and by a
-- finalizer if an object is dropped without either.
local slots_by_pool = {}
local slot_regs = {}    -- the same, by number (for the finalizers)


-- -ERR texts after which the server keeps the connection open
-- (nats-server client.go; matched case-insensitively)
local function err_is_fatal(text)
    local t = str_lower(text)
    if str_find(t, "permissions violation", 1, true)
       or str_find(t, "invalid subject", 1, true)
       or str_find(t, "invalid publish subject", 1, true)
       or str_find(t, "maximum subscriptions exceeded", 1, true)
    then
        return false
    end
    return true
end


function _M.new(self)
    local sock, err = tcp()
    if not sock then
        return nil, err
    end

    self = new_tab(0, OBJECT_FIELDS)
    self._sock = sock
    self._errbuf = ffi_new("char[?]", ERRBUF_SIZE)
    self._sizes = ffi_new("size_t[2]")  -- [0]: frame size, [1]: errlen
    self._errlen = self._sizes + 1
    self._ev = ffi_new("resty_nats_event_t")
    self._obuf = nil    -- the write buffer (char[_ocap]), see set_write_buffer
    self._ocap = 0
    self._olen = 0      -- bytes waiting in _obuf
    self._wmax = 0
    setmetatable(self, mt)  -- not a tail call: NYI for the JIT compiler
    return self
end


function _M.set_timeout(self, timeout)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    sock:settimeout(timeout)
    self._timeouts = { timeout, timeout, timeout }
    return true
end


function _M.set_timeouts(self, connect_timeout, send_timeout, read_timeout)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    sock:settimeouts(connect_timeout, send_timeout, read_timeout)
    self._timeouts = { connect_timeout, send_timeout, read_timeout }
    return true
end


-- Timeouts. One rule everywhere: what the call says, else what
-- set_timeout(s) (or connect's timeout options) said, else what nginx.conf
-- says for cosockets where the caller runs (lua_socket_*_timeout; 0 in
-- set_timeouts also means that, as for tcpsock:settimeouts). A default of
-- ours never replaces a configured value.

-- the connect, send and read timeouts of the caller's location (ms)
local function location_timeouts()
    if socket_conf then
        local r = get_request()
        if r and socket_conf(r, scratch_u64) == OK then
            return tonumber(scratch_u64[0]), tonumber(scratch_u64[1]),
                   tonumber(scratch_u64[2])
        end
    end
    return DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT
end
_M._location_timeouts = location_timeouts   -- for the test suites


-- lua_socket_pool_size where the caller runs
local function location_pool_size()
    if socket_conf then
        local r = get_request()
        if r and socket_conf(r, scratch_u64) == OK and scratch_u64[3] > 0 then
            return tonumber(scratch_u64[3])
        end
    end
    return DEFAULT_POOL_SIZE
end
_M._location_pool_size = location_pool_size


-- the read timeout set on this object (ms), or nil
local function explicit_read_timeout(self)
    local to = self._timeouts
    local rt = to and to[3]
    if rt and rt > 0 then
        return rt
    end
    return nil
end


-- the read timeout in effect (ms): set on the object, else nginx.conf's;
-- it bounds every wait of a call as a whole
local function read_timeout(self)
    local rt = explicit_read_timeout(self)
    if rt then
        return rt
    end
    rt = self._loc_rt       -- one location per object: read it once
    if not rt then
        local _
        _, _, rt = location_timeouts()
        self._loc_rt = rt
    end
    return rt
end


local function last_error(self)
    return ffi_string(self._errbuf, self._sizes[1])
end


local function reset_errlen(self)
    self._sizes[1] = ERRBUF_SIZE
end


-- calls a framer (buf, size, n, args..., err, errlen) with the scratch
-- buffer, growing it when the frame does not fit; returns the frame as a
-- Lua string, or nil, err
local function frame_call(self, f, ...)
    local sizes = self._sizes
    while true do
        sizes[1] = ERRBUF_SIZE
        local rc = f(scratch, scratch_size, sizes, ...)
        if rc == OK then
            return ffi_string(scratch, sizes[0])
        end

        if rc == AGAIN then
            local need = tonumber(sizes[0])
            if need <= scratch_size then
                return nil, "framer size probe failed"
            end
            scratch = ffi_new("char[?]", need)
            scratch_size = need

        else
            return nil, ffi_string(self._errbuf, sizes[1])
        end
    end
end


-- wakes every synchronous request still waiting, with err
local function fail_waiters(self, err)
    local resp = self._resp
    if not resp then
        return
    end
    for token, entry in pairs(resp) do
        if entry.sema then
            resp[token] = nil
            entry.done = true
            entry.err = err
            entry.sema:post(1)
        end
    end
end


-- gives the pool slot back (see slots_by_pool)
local function slot_release(self)
    local reg = self._slot_reg
    if reg then
        self._slot_reg = nil
        local nfree = reg.nfree + 1
        reg.free[nfree] = self._slot
        reg.nfree = nfree
        self._slot_guard = ffi_gc(self._slot_guard, nil)
    end
end


local function slot_guard_gc(guard)
    local reg = slot_regs[guard[0]]
    local n = reg.nfree + 1
    reg.free[n] = guard[1]
    reg.nfree = n
end


local function slot_take(self, base)
    local reg = slots_by_pool[base]
    if not reg then
        local id = #slot_regs + 1
        reg = { free = {}, nfree = 0, n = 0, state = {}, id = id,
                names = {} }
        slots_by_pool[base] = reg
        slot_regs[id] = reg
    end
    local k
    local nfree = reg.nfree
    if nfree > 0 then
        k = reg.free[nfree]
        reg.free[nfree] = nil
        reg.nfree = nfree - 1
    else
        k = reg.n + 1
        reg.n = k
    end
    self._slot_reg = reg
    self._slot = k
    -- dropped without set_keepalive or close: the slot comes back anyway
    local guard = ffi_new("int32_t[2]")
    guard[0] = reg.id
    guard[1] = k
    self._slot_guard = ffi_gc(guard, slot_guard_gc)
    local name = reg.names[k]
    if not name then
        name = base .. "#" .. k
        reg.names[k] = name
    end
    return name, reg, k
end


-- closes the connection after a failure that leaves it unusable
local function fail(self, err)
    local sock = self._sock
    if sock and self._connected then
        sock:close()
    end
    slot_release(self)
    self._connected = false
    fail_waiters(self, err)
    return false, err
end


-- sends what publish() buffered, if anything
local function write_flush(self)
    local olen = self._olen
    if olen == 0 then
        return true
    end
    self._olen = 0
    self._sent = self._sent + 1
    local _, err = self._sock:send(ffi_string(self._obuf, olen))
    if err then
        return fail(self, err)
    end
    return true
end


-- appends s to the write buffer if it fits; returns true if it did
local function buffer_str(self, s)
    local olen = self._olen
    local len = #s
    if olen + len > self._ocap then
        return false
    end
    ffi_copy(self._obuf + olen, s, len)
    self._olen = olen + len
    return true
end


-- sends data (a string or a list of strings) after whatever publish()
-- buffered, in one send when it fits; a failure closes the connection
local function send(self, data)
    if self._olen > 0 then
        if type(data) == "table" then
            local olen = self._olen
            local fits = true
            for i = 1, #data do
                if not buffer_str(self, data[i]) then
                    self._olen = olen
                    fits = false
                    break
                end
            end
            if fits then
                return write_flush(self)
            end
        elseif buffer_str(self, data) then
            return write_flush(self)
        end

        local ok, err = write_flush(self)
        if not ok then
            return nil, err
        end
    end

    self._sent = self._sent + 1
    local _, err = self._sock:send(data)
    if err then
        return fail(self, err)
    end
    return true
end


-- set_write_buffer(bytes): publish() buffers up to that many bytes and
-- sends them in one go (0: every publish is sent at once, the default)
function _M.set_write_buffer(self, size)
    if type(size) ~= "number" or size < 0 then
        error("bad argument #1 to 'set_write_buffer' (a size >= 0 "
              .. "expected)", 2)
    end
    local ok, err = true, nil
    if self._connected and self._olen > 0 then
        ok, err = write_flush(self)
    end
    self._wmax = size
    -- room for a full buffer plus the largest control line, so that a
    -- message that crosses the mark is framed in place before the flush
    local cap = size > 0 and size + FRAME_SIZE + 2 or 0
    if cap ~= self._ocap then
        self._obuf = cap > 0 and ffi_new("char[?]", cap) or nil
        self._ocap = cap
        self._olen = 0
    end
    if not ok then
        return false, err
    end
    return true
end


local function apply_info(self, ev)
    local info = ffi_new("resty_nats_info_t")
    reset_errlen(self)
    local rc = C.resty_nats_parser_info(self._parser, ev.payload.data,
                                        ev.payload.len, info, self._errbuf,
                                        self._errlen)
    if rc ~= OK then
        return nil, "bad INFO: " .. last_error(self)
    end

    local max_payload = tonumber(info.max_payload)
    if max_payload <= 0 then
        max_payload = DEFAULT_MAX_PAYLOAD
    end

    local si = {
        max_payload = max_payload,
        headers = info.headers ~= 0,
        proto = tonumber(info.proto),
        server_id = ffi_string(info.server_id.data, info.server_id.len),
        server_name = ffi_string(info.server_name.data,
                                 info.server_name.len),
        version = ffi_string(info.version.data, info.version.len),
        nonce = ffi_string(info.nonce.data, info.nonce.len),
        client_id = tonumber(info.client_id),
        auth_required = info.auth_required ~= 0,
        tls_required = info.tls_required ~= 0,
        tls_available = info.tls_available ~= 0,
        tls_verify = info.tls_verify ~= 0,
        ldm = info.ldm ~= 0,
        jetstream = info.jetstream ~= 0,
    }

    local urls = ffi_string(info.connect_urls.data, info.connect_urls.len)
    if urls ~= "" then
        local list = {}
        for u in urls:gmatch("[^,]+") do
            list[#list + 1] = u
        end
        si.connect_urls = list
        local key = self._cluster_key
        if key then
            local known = learned_urls[key]
            if not known then
                known = {}
                learned_urls[key] = known
            end
            for _, u in ipairs(list) do
                known[u] = true
            end
        end
    end

    if si.ldm then
        ngx_log(ngx_WARN, "nats: server ", si.server_id,
                " entered lame duck mode")
    end

    self._info = si
    self._max_payload = max_payload
    C.resty_nats_parser_set_max_payload(self._parser, max_payload)
    return si
end


-- reads from the socket into the parser until an event is ready.
-- deadline (ms, as ngx.now() * 1000): when set, the read waits at most
-- until then, however much control traffic arrives meanwhile.
-- Returns ev, or nil, err, fatal
local function read_event(self, deadline)
    local p = self._parser
    local ev = self._ev
    while true do
        reset_errlen(self)
        local rc = C.resty_nats_parser_next(p, ev, self._errbuf,
                                            self._errlen)
        if rc == OK then
            return ev
        end

        if rc ~= AGAIN then
            local err = "protocol error: " .. last_error(self)
            ngx_log(ngx_ERR, "nats: ", err, ", closing the connection")
            return nil, err, true
        end

        if self._olen > 0 then
            local ok, err = write_flush(self)
            if not ok then
                return nil, err, true
            end
        end

        local sock = self._sock
        local to = deadline and self._timeouts
        local restore = false
        if deadline then
            ngx_update_time()
            local left = deadline - ngx_now() * 1000
            if left <= 0 then
                return nil, "timeout"
            end
            if left < read_timeout(self) then
                if to then
                    sock:settimeouts(to[1], to[2], left)
                else
                    sock:settimeout(left)
                end
                restore = true
            end
        end

        local data, err = sock:receiveany(READ_SIZE)
        if restore then
            if to then
                sock:settimeouts(to[1], to[2], to[3])
            else
                -- 0: back to lua_socket_*_timeout
                sock:settimeout(0)
            end
        end
        if not data then
            -- a read timeout leaves the connection usable
            return nil, err, err ~= "timeout"
        end

        reset_errlen(self)
        rc = C.resty_nats_parser_feed(p, data, #data, self._errbuf,
                                      self._errlen)
        if rc ~= OK then
            local err = "protocol error: " .. last_error(self)
            ngx_log(ngx_ERR, "nats: ", err, ", closing the connection")
            return nil, err, true
        end
    end
end


-- the fast path, loop-free so that LuaJIT compiles it into the caller's
-- loop: an event already parsed; read_event() reads when there is none
local function next_event(self, deadline)
    local ev = self._ev
    self._sizes[1] = ERRBUF_SIZE
    if C.resty_nats_parser_next(self._parser, ev, self._errbuf,
                                self._errlen) == OK
    then
        return ev
    end
    return read_event(self, deadline)
end


local function build_headers(ev)
    local n = tonumber(ev.nheaders)
    local headers = {}
    for i = 0, n - 1 do
        local h = ev.headers[i]
        local k = ffi_string(h.name.data, h.name.len)
        local v = ffi_string(h.value.data, h.value.len)
        local old = headers[k]
        if old == nil then
            headers[k] = v
        elseif type(old) == "table" then
            old[#old + 1] = v
        else
            headers[k] = { old, v }
        end
    end
    return headers
end


local function build_msg(ev, sid)
    local msg = {
        subject = ffi_string(ev.subject.data, ev.subject.len),
        sid = sid,
        reply_to = ev.reply.len > 0
                   and ffi_string(ev.reply.data, ev.reply.len) or nil,
        payload = ffi_string(ev.payload.data, ev.payload.len),
    }
    if ev.type == EV_HMSG then
        local status = ev.status
        if status == STATUS_INVALID_HEADERS then
            -- a publisher sent a header block that is not valid: the
            -- message keeps its payload, loses its headers
            msg.header_error = ffi_string(ev.description.data,
                                          ev.description.len)
        else
            msg.headers = build_headers(ev)
            if status ~= 0 then
                msg.status = status
                msg.description = ffi_string(ev.description.data,
                                             ev.description.len)
            end
        end
    end
    return msg
end


-- handles one server event that is not a message; returns true, or
-- false, err (closing the connection when the error is fatal)
local function handle_control(self, ev)
    local t = ev.type
    if t == EV_PING then
        local ok, err = send(self, PONG)
        if not ok then
            return false, err
        end

    elseif t == EV_PONG then
        -- PONGs answer our PINGs in order; the one to the last PING
        -- confirms every send up to that PING
        local pongs = self._pongs + 1
        self._pongs = pongs
        if pongs == self._pings then
            self._acked = self._ping_sent
        end

    elseif t == EV_INFO then
        local ok, err = apply_info(self, ev)
        if not ok then
            return fail(self, err)
        end

    elseif t == EV_ERR then
        local text = ffi_string(ev.payload.data, ev.payload.len)
        if err_is_fatal(text) then
            ngx_log(ngx_ERR, "nats: server error: ", text,
                    ", closing the connection")
            return fail(self, text)
        end
        return false, text
    end

    return true
end


local function drop_sub(self, nsid)
    if self._subs[nsid] then
        self._subs[nsid] = nil
        self._nsubs = self._nsubs - 1
    end
    C.resty_nats_subs_remove(self._subtab, nsid)
end


-- a reply on the muxed inbox: returns the number of messages it counts
-- for wait() (1 for a callback request), or nil, err to stop the reader
local function deliver_reply(self, ev, nsid, sub)
    local plen = #self._inbox_prefix
    if ev.subject.len <= plen then
        return 0
    end
    local token = ffi_string(ev.subject.data + plen, ev.subject.len - plen)
    local entry = self._resp[token]
    if not entry then
        -- a late reply (the request timed out) or a second responder
        return 0
    end

    self._resp[token] = nil
    self._nresp = self._nresp - 1

    local msg = build_msg(ev, sub.sid)
    local no_responders = msg.status == 503 and msg.payload == ""

    if entry.callback then
        if no_responders then
            return nil, "no responders"
        end
        entry.callback(msg)
        return 1
    end

    entry.done = true
    if no_responders then
        entry.err = "no responders"
    else
        entry.msg = msg
    end
    if entry.sema then
        entry.sema:post(1)
    end
    return 0
end


-- stop conditions of the reader, stop(self, arg): plain functions, since a
-- closure per call is something LuaJIT does not compile (FNEW)
local function stop_entry_done(_, entry)
    return entry.done
end

local function stop_delivered(self, target)
    return self._delivered >= target
end

local function stop_never()
    return false
end

local function stop_pongs(self, mine)
    return self._pongs >= mine
end


-- The reader: reads and dispatches until stop(self, arg) is true, the deadline
-- passes (rt: the deadline moves on by rt ms with every message counted
-- for wait), or an error. Returns true, or false, err. With keep_going, a
-- non-fatal -ERR does not stop it: the first one is returned at the end.
local function run(self, deadline, rt, stop, keep_going, arg)
    local subs = self._subs
    local subtab = self._subtab
    local soft_err

    while not stop(self, arg) do
        local ev, err, fatal = next_event(self, deadline)
        if not ev then
            if fatal then
                return fail(self, err)
            end
            return false, err
        end

        local t = ev.type
        if t == EV_MSG or t == EV_HMSG then
            local nsid = tonumber(ev.sid)
            local sub = subs[nsid]
            local counted = 0
            if sub and nsid == self._inbox_sid then
                counted, err = deliver_reply(self, ev, nsid, sub)
                if not counted then
                    return false, err
                end

            elseif sub then
                local rc = C.resty_nats_subs_deliver(subtab, ev.sid)
                if rc == OK or rc == DONE then
                    local msg = build_msg(ev, sub.sid)
                    if rc == DONE then
                        subs[nsid] = nil
                        self._nsubs = self._nsubs - 1
                    end
                    sub.callback(msg)
                    counted = 1
                end
            end
            -- (a message for a subscription that ended is dropped)

            if counted > 0 then
                self._delivered = self._delivered + counted
                if rt then
                    deadline = ngx_now() * 1000 + rt
                end
            end

        else
            local ok
            ok, err = handle_control(self, ev)
            if not ok then
                if not keep_going or not self._connected then
                    return false, err
                end
                soft_err = soft_err or err
            end
        end
    end

    if soft_err then
        return false, soft_err
    end
    return true
end


-- hands the socket over to a synchronous request waiting for it
local function handoff(self)
    local resp = self._resp
    if not resp then
        return
    end
    for _, entry in pairs(resp) do
        if entry.sema and not entry.done then
            entry.takeover = true
            entry.sema:post(1)
            return
        end
    end
end


-- runs the reader when no other light thread is reading this object
local function read_until(self, deadline, rt, stop, keep_going, arg)
    if self._reading then
        return false, "busy: another light thread is reading this connection"
    end

    self._reading = true
    local ok, err = run(self, deadline, rt, stop, keep_going, arg)
    self._reading = false
    handoff(self)
    if ok then
        return true
    end
    return false, err
end


local function now_ms()
    ngx_update_time()
    return ngx_now() * 1000
end


---------------------------------------------------------------------------
-- connecting

-- "nats://user:pass@host:port", "tls://host", "host:port", "host"
local function parse_url(url)
    if type(url) ~= "string" then
        return nil, "server URL is not a string"
    end

    local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
    if not scheme then
        rest = url
        scheme = "nats"
    end
    scheme = str_lower(scheme)
    if scheme ~= "nats" and scheme ~= "tls" then
        return nil, "unsupported URL scheme: " .. scheme
    end

    rest = rest:gsub("/.*$", "")
    local user, pass
    local userinfo, hostport = rest:match("^(.*)@([^@]*)$")
    if userinfo then
        user, pass = userinfo:match("^([^:]*):(.*)$")
        if not user then
            user = userinfo
        end
        user = ngx.unescape_uri(user)
        pass = pass and ngx.unescape_uri(pass)
    else
        hostport = rest
    end

    local host, port = hostport:match("^%[(.+)%]:(%d+)$")
    if not host then
        host, port = hostport:match("^([^:]+):(%d+)$")
    end
    if not host then
        host = hostport:match("^%[(.+)%]$") or hostport
    end
    if host == "" or host:find("[%s/]") then
        return nil, "invalid server URL: " .. url
    end

    port = tonumber(port) or DEFAULT_PORT
    return { host = host, port = port, tls = scheme == "tls", user = user,
             pass = pass, url = url,
             key = (scheme == "tls" and "tls://" or "") .. host .. ":"
                   .. port }
end


-- the servers to try, in order: the seed list (shuffled unless
-- no_randomize) with the members learnt from INFO, recently failed ones
-- last
local function add_server(list, seen, s)
    if not seen[s.key] then
        seen[s.key] = true
        list[#list + 1] = s
    end
end


-- the server of connect(host, port) or connect("unix:/path")
local function host_server(host, port)
    if str_sub(tostring(host), 1, 5) == "unix:" then
        return { host = host, key = host, unix = true }
    end
    local p = tonumber(port) or DEFAULT_PORT
    return { host = host, port = p, key = host .. ":" .. p }
end


local function server_list(opts, host, port)
    local servers = opts and opts.servers
    local first
    if not servers then
        if not host then
            return nil, "no server to connect to"
        end
        first = host_server(host, port)
        if not learned_urls[first.key] then
            -- one server and none learnt from it (the usual case): nothing
            -- to shuffle or to order by availability
            return { first }, first.key
        end
    end

    local list = {}
    local seen = {}
    local cluster_key

    if servers then
        if type(servers) ~= "table" or #servers == 0 then
            return nil, "opts.servers must be a non-empty list"
        end
        local keys = {}
        for _, url in ipairs(servers) do
            local s, err = parse_url(url)
            if not s then
                return nil, err
            end
            add_server(list, seen, s)
            keys[#keys + 1] = s.key
        end
        cluster_key = tab_concat(keys, ",")

    else
        add_server(list, seen, first)
        cluster_key = first.key
    end

    local known = learned_urls[cluster_key]
    if known then
        local tls = list[1].tls
        for u in pairs(known) do
            local s = parse_url((tls and "tls://" or "nats://") .. u)
            if s then
                add_server(list, seen, s)
            end
        end
    end

    if #list > 1 and not (opts and opts.no_randomize) then
        for i = #list, 2, -1 do
            local j = math_random(i)
            list[i], list[j] = list[j], list[i]
        end
    end

    local now = ngx_now()
    local up, down = {}, {}
    for _, s in ipairs(list) do
        local d = down_until[s.key]
        if d and d > now then
            down[#down + 1] = s
        else
            up[#up + 1] = s
        end
    end
    for _, s in ipairs(down) do
        up[#up + 1] = s
    end

    return up, cluster_key
end


local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        return nil, err
    end
    local data = f:read("*a")
    f:close()
    return data
end


-- the TLS upgrade, right after INFO
local function tls_handshake(self, srv, tls)
    local sock = self._sock
    tls = type(tls) == "table" and tls or {}

    if tls.cert or tls.key then
        if not sock.setclientcert then
            return nil, "client certificates need lua-nginx-module "
                        .. "0.10.22 or later"
        end
        local ok, ssl = pcall(require, "ngx.ssl")
        if not ok then
            return nil, "client certificates need lua-resty-core (ngx.ssl)"
        end
        local cert_pem, key_pem = tls.cert, tls.key
        if tls.cert and not tls.cert:find("-----BEGIN", 1, true) then
            local err
            cert_pem, err = read_file(tls.cert)
            if not cert_pem then
                return nil, "cannot read the client certificate: " .. err
            end
        end
        if tls.key and not tls.key:find("-----BEGIN", 1, true) then
            local err
            key_pem, err = read_file(tls.key)
            if not key_pem then
                return nil, "cannot read the client key: " .. err
            end
        end
        local cert, err = ssl.parse_pem_cert(cert_pem or "")
        if not cert then
            return nil, "bad client certificate: " .. tostring(err)
        end
        local key
        key, err = ssl.parse_pem_priv_key(key_pem or "")
        if not key then
            return nil, "bad client key: " .. tostring(err)
        end
        local ok2
        ok2, err = sock:setclientcert(cert, key)
        if not ok2 then
            return nil, err
        end
    end

    local server_name = tls.server_name
    if server_name == nil and not srv.host:match("^[%d.]+$")
       and not srv.host:find(":", 1, true)
    then
        server_name = srv.host
    end

    local verify = tls.verify ~= false
    -- lua-resty-core 0.1.25 (Debian 12) raises an assertion instead of
    -- returning the error when verification fails after a handshake that
    -- completed at once (a host name mismatch): that is a failure too
    local ok, session, err = pcall(sock.sslhandshake, sock, nil, server_name,
                                   verify)
    if not ok then
        ngx_log(ngx_ERR, "nats: tls handshake failed: ", session)
        return nil, "tls handshake failed: certificate verification failed"
    end
    if not session then
        return nil, "tls handshake failed: " .. tostring(err)
    end
    self._tls = true
    return true
end


local function set_str(o, anchors, field, value)
    if value ~= nil then
        value = tostring(value)
        anchors[#anchors + 1] = value
        o[field].data = value
        o[field].len = #value
    end
end


local function handshake(self, srv, opts)
    -- the read timeout bounds the whole exchange, not each read: a server
    -- dribbling its INFO a byte at a time cannot hold connect() longer
    local deadline = now_ms() + read_timeout(self)
    local ev, err = next_event(self, deadline)
    if not ev then
        return nil, err
    end

    while ev.type == EV_PING do
        local _, serr = self._sock:send(PONG)
        if serr then
            return nil, serr
        end
        ev, err = next_event(self, deadline)
        if not ev then
            return nil, err
        end
    end

    if ev.type ~= EV_INFO then
        return nil, "protocol error: expected INFO from the server"
    end

    local si
    si, err = apply_info(self, ev)
    if not si then
        return nil, err
    end

    local want_tls = srv.tls or (opts and opts.tls)
    if si.tls_required or want_tls then
        if not si.tls_required and not si.tls_available and want_tls then
            return nil, "the server does not support TLS"
        end
        local ok
        ok, err = tls_handshake(self, srv, opts and opts.tls)
        if not ok then
            return nil, err
        end
    end

    local o = ffi_new("resty_nats_connect_opts_t")
    local anchors = {}
    o.verbose = opts and opts.verbose and 1 or 0
    o.pedantic = opts and opts.pedantic and 1 or 0
    o.tls_required = self._tls and 1 or 0
    o.echo = -1
    o.protocol = 1
    o.headers = si.headers and 1 or 0
    o.no_responders = si.headers and 1 or 0
    set_str(o, anchors, "lang", "lua")
    set_str(o, anchors, "version", _M._VERSION)

    if opts then
        set_str(o, anchors, "name", opts.name)
        if opts.echo ~= nil and si.proto >= 1 then
            o.echo = opts.echo and 1 or 0
        end
    end

    local user = srv.user or (opts and opts.user)
    local pass = srv.pass or (opts and opts.pass)
    if user and (srv.user or not (opts and opts.token)) then
        set_str(o, anchors, "user", user)
        set_str(o, anchors, "pass", pass)
    end
    if opts and opts.token then
        set_str(o, anchors, "auth_token", opts.token)
    end

    local seed
    if opts and opts.creds then
        local nkeys = require "resty.nats.nkeys"
        local text = opts.creds
        if not text:find("-----BEGIN", 1, true) then
            text, err = read_file(text)
            if not text then
                return nil, "cannot read the creds file: " .. err
            end
        end
        local jwt
        jwt, seed, err = nkeys.parse_creds(text)
        if not jwt then
            return nil, err
        end
        set_str(o, anchors, "jwt", jwt)

    elseif opts and opts.nkey then
        local nkeys = require "resty.nats.nkeys"
        seed = opts.nkey
        local pub
        pub, err = nkeys.public_key(seed)
        if not pub then
            return nil, err
        end
        set_str(o, anchors, "nkey", pub)
    end

    if seed then
        if si.nonce == "" then
            return nil, "the server sent no nonce to sign"
        end
        local nkeys = require "resty.nats.nkeys"
        local sig
        sig, err = nkeys.sign(seed, si.nonce)
        if not sig then
            return nil, err
        end
        set_str(o, anchors, "sig", sig)
    end

    local frame
    frame, err = frame_call(self, C.resty_nats_frame_connect, o,
                            self._errbuf, self._errlen)
    if not frame then
        return nil, err
    end

    local _
    _, err = self._sock:send({ frame, PING })
    if err then
        return nil, err
    end

    while true do
        ev, err = next_event(self, deadline)
        if not ev then
            return nil, err
        end

        local t = ev.type
        if t == EV_PONG then
            return true

        elseif t == EV_PING then
            _, err = self._sock:send(PONG)
            if err then
                return nil, err
            end

        elseif t == EV_ERR then
            local text = ffi_string(ev.payload.data, ev.payload.len)
            if str_lower(text) == "authorization violation" then
                return nil, "authorization violation"
            end
            return nil, text

        elseif t == EV_INFO then
            local ok
            ok, err = apply_info(self, ev)
            if not ok then
                return nil, err
            end

        elseif t ~= EV_OK then
            return nil, "protocol error: unexpected message during handshake"
        end
    end
end


local function pool_name(srv, opts)
    if opts and opts.pool then
        return opts.pool
    end
    if not opts and not srv.user then
        return srv.key
    end

    local parts = { srv.key }
    if opts then
        -- a different identity or TLS setting needs a different pool
        parts[#parts + 1] = tostring(opts.user or srv.user or "")
        parts[#parts + 1] = tostring(opts.token or "")
        parts[#parts + 1] = opts.nkey
                            and ("nkey:" .. ngx.crc32_long(opts.nkey)) or ""
        parts[#parts + 1] = tostring(opts.creds and "creds" or "")
        parts[#parts + 1] = opts.tls and "tls" or ""
        parts[#parts + 1] = tostring(opts.name or "")
    elseif srv.user then
        parts[#parts + 1] = srv.user
    end
    return tab_concat(parts, ":")
end


local function connect_one(self, srv, opts)
    local sock = self._sock
    slot_release(self)
    local base = pool_name(srv, opts)
    local pool, reg, slot = slot_take(self, base)
    local copts = { pool = pool }
    self._pool_cap = opts and opts.pool_size

    if opts then
        local ct, st, rt = opts.connect_timeout, opts.send_timeout,
                           opts.read_timeout
        if ct or st or rt then
            -- an option left out keeps what was set, else nginx.conf's
            local to = self._timeouts
            local lct, lst, lrt
            if to then
                lct, lst, lrt = to[1], to[2], to[3]
            else
                lct, lst, lrt = location_timeouts()
            end
            self:set_timeouts(ct or lct, st or lst, rt or lrt)
        end
    end

    local ok, err
    if srv.unix then
        ok, err = sock:connect(srv.host, copts)
    else
        ok, err = sock:connect(srv.host, srv.port, copts)
    end
    if not ok then
        slot_release(self)
        return nil, err
    end

    -- fresh protocol state for every connect
    local pp = ffi_new("resty_nats_parser_t *[1]")
    if C.resty_nats_parser_new(pp, 0) ~= OK then
        sock:close()
        return nil, "no memory"
    end
    self._parser = ffi_gc(pp[0], C.resty_nats_parser_free)

    local tp = ffi_new("resty_nats_subs_t *[1]")
    if C.resty_nats_subs_new(tp) ~= OK then
        sock:close()
        return nil, "no memory"
    end
    self._subtab = ffi_gc(tp[0], C.resty_nats_subs_free)
    self._subs = {}
    self._nsubs = 0
    self._olen = 0
    self._pings = 0
    self._pongs = 0
    self._sent = 0          -- sends so far (see send_ping and settle)
    self._ping_sent = 0     -- ... when the last PING went out
    self._acked = 0         -- ... that the server confirmed with a PONG
    self._delivered = 0
    self._resp = {}
    self._nresp = 0
    self._inbox_sid = nil
    self._inbox_prefix = nil
    self._reading = false
    self._tls = false
    self._pool = pool
    self._server = srv

    local reused = sock:getreusedtimes()
    local st = reg.state[slot]
    reg.state[slot] = nil
    if reused and reused > 0 then
        if st then
            local si = st.info
            self._info = si
            self._max_payload = si.max_payload
            C.resty_nats_parser_set_max_payload(self._parser, si.max_payload)
            -- never hand out a sid the connection used before
            C.resty_nats_subs_reserve(self._subtab, st.next_sid)
            if st.inbox_sid then
                reset_errlen(self)
                if C.resty_nats_subs_restore(self._subtab, st.inbox_subject,
                                             #st.inbox_subject, st.inbox_sid,
                                             self._errbuf, self._errlen) ~= OK
                then
                    sock:close()
                    slot_release(self)
                    return nil, "pooled inbox: " .. last_error(self)
                end
                self._subs[st.inbox_sid] = { sid = tostring(st.inbox_sid),
                                             subject = st.inbox_subject }
                self._nsubs = 1
                self._inbox_sid = st.inbox_sid
                self._inbox_prefix = st.inbox_prefix
            end
            return true
        end
        -- a pooled connection this module knows nothing about: unusable
        sock:close()
        slot_release(self)
        return nil, "pooled connection without server info"
    end

    ok, err = handshake(self, srv, opts)
    if not ok then
        sock:close()
        slot_release(self)
        return nil, err
    end

    return true
end


-- connect(host, port [, opts]), connect("unix:/path" [, opts]),
-- connect(opts) with opts.servers
function _M.connect(self, host, port, opts)
    local sock = self._sock
    if not sock then
        return false, "not initialized"
    end

    if type(host) == "table" then
        opts, host, port = host, nil, nil
    elseif type(port) == "table" then
        opts, port = port, nil
    end

    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument to 'connect' (options table expected, got "
              .. type(opts) .. ")", 2)
    end

    local wb = opts and opts.write_buffer
    if wb ~= nil then
        if type(wb) ~= "number" or wb < 0 then
            error("bad 'write_buffer' option to 'connect' (a size >= 0 "
                  .. "expected)", 2)
        end
        -- on a reconnect, what the old connection buffered goes out first
        -- (its failure is no reason not to connect)
        _M.set_write_buffer(self, wb)
    end

    local list, cluster_key = server_list(opts, host, port)
    if not list then
        return false, cluster_key
    end
    self._cluster_key = cluster_key

    local errs = {}
    for _, srv in ipairs(list) do
        local ok, err = connect_one(self, srv, opts)
        if ok then
            down_until[srv.key] = nil
            self._connected = true
            return true
        end

        -- an authentication failure is the answer, not a dead server
        if err == "authorization violation"
           or str_find(str_lower(err), "authentication", 1, true)
        then
            return false, err
        end

        down_until[srv.key] = ngx_now() + SERVER_DOWN_TIME
        errs[#errs + 1] = srv.key .. ": " .. tostring(err)
        if #list == 1 then
            return false, err
        end
    end

    return false, "no server available (" .. tab_concat(errs, "; ") .. ")"
end


---------------------------------------------------------------------------
-- publishing

-- a Lua table { Name = "v" or { "v1", "v2" } } as a header array; the
-- strings stay referenced by anchors while C reads them
local function header_array(headers, anchors)
    local names = {}
    for k in pairs(headers) do
        if type(k) ~= "string" then
            return nil, "header names must be strings"
        end
        names[#names + 1] = k
    end
    tab_sort(names)

    local n = 0
    for _, k in ipairs(names) do
        local v = headers[k]
        n = n + (type(v) == "table" and #v or 1)
    end

    local arr = ffi_new("resty_nats_header_t[?]", n)
    local i = 0
    for _, k in ipairs(names) do
        local v = headers[k]
        local values = type(v) == "table" and v or { v }
        for _, one in ipairs(values) do
            one = tostring(one)
            anchors[#anchors + 1] = one
            anchors[#anchors + 1] = k
            arr[i].name.data = k
            arr[i].name.len = #k
            arr[i].value.data = one
            arr[i].value.len = #one
            i = i + 1
        end
    end
    return arr, n
end


local function check_payload(payload, fname)
    if payload == nil then
        return ""
    end
    local t = type(payload)
    if t == "string" then
        return payload
    end
    if t == "number" then
        return tostring(payload)
    end
    error("bad argument #2 to '" .. fname .. "' (string expected, got "
          .. t .. ")", 3)
end


-- why publish, subscribe or request cannot go on, or nil
local function unusable(self, subject)
    if not self._connected then
        return "not connected"
    end
    if type(subject) ~= "string" then
        return "subject is not a string"
    end
end


-- the frames of one message: control line (plus header block), payload,
-- CRLF; or nil, err
local function message_frames(self, subject, payload, reply, headers)
    local rlen = reply and #reply or 0
    if headers and next(headers) ~= nil then
        if not self._info or not self._info.headers then
            return nil, "the server does not support headers"
        end
        local anchors = {}
        local arr, n = header_array(headers, anchors)
        if not arr then
            return nil, n
        end
        local line, err = frame_call(self, C.resty_nats_frame_hpub, subject,
                                     #subject, reply, rlen, arr, n, #payload,
                                     self._max_payload, self._errbuf,
                                     self._errlen)
        anchors = nil
        if not line then
            return nil, err
        end
        return line
    end

    -- the hot path, without frame_call's varargs and loop (both keep
    -- LuaJIT from compiling a publish loop); a PUB line always fits
    local sizes = self._sizes
    sizes[1] = ERRBUF_SIZE
    local rc = C.resty_nats_frame_pub(scratch, scratch_size, sizes, subject,
                                      #subject, reply, rlen, #payload,
                                      self._max_payload, self._errbuf,
                                      self._errlen)
    if rc == OK then
        return ffi_string(scratch, sizes[0])
    end
    return frame_call(self, C.resty_nats_frame_pub, subject, #subject, reply,
                      rlen, #payload, self._max_payload, self._errbuf,
                      self._errlen)
end


-- publish(subject, payload, reply_to) or
-- publish(subject, payload, { reply_to = ..., headers = { ... } })
function _M.publish(self, subject, payload, opts)
    local bad = unusable(self, subject)
    if bad then
        return false, bad
    end

    payload = check_payload(payload, "publish")

    local reply, headers
    if type(opts) == "table" then
        reply, headers = opts.reply_to, opts.headers
        if headers ~= nil and type(headers) ~= "table" then
            error("bad argument #3 to 'publish' (headers must be a table)",
                  2)
        end
    else
        reply = opts
    end

    if reply ~= nil and type(reply) ~= "string" then
        return false, "reply_to is not a string"
    end

    local wmax = self._wmax
    if wmax > 0 and headers == nil then
        -- buffered: framed in place, out when the buffer passes wmax,
        -- before any read, at flush, close or set_keepalive
        local plen = #payload
        local olen = self._olen
        local ocap = self._ocap
        if olen + plen + FRAME_SIZE + 2 > ocap and olen > 0 then
            local ok, err = write_flush(self)
            if not ok then
                return false, err
            end
            olen = 0
        end
        if plen + FRAME_SIZE + 2 <= ocap then
            local sizes = self._sizes
            sizes[1] = ERRBUF_SIZE
            local obuf = self._obuf
            local rc = C.resty_nats_frame_pub(obuf + olen, ocap - olen, sizes,
                                              subject, #subject, reply,
                                              reply and #reply or 0, plen,
                                              self._max_payload,
                                              self._errbuf, self._errlen)
            if rc ~= OK then
                -- the room covers any control line: a refusal
                return false, last_error(self)
            end
            olen = olen + tonumber(sizes[0])
            ffi_copy(obuf + olen, payload, plen)
            olen = olen + plen
            obuf[olen] = 13
            obuf[olen + 1] = 10
            olen = olen + 2
            self._olen = olen
            if olen >= wmax then
                return write_flush(self)
            end
            return true
        end
        -- larger than the buffer: sent on its own below
    end

    local line, err = message_frames(self, subject, payload, reply, headers)
    if not line then
        return false, err
    end

    if wmax > 0 and self._olen + #line + #payload + 2 <= self._ocap then
        -- buffered, with headers
        buffer_str(self, line)
        buffer_str(self, payload)
        buffer_str(self, CRLF)
        if self._olen >= wmax then
            return write_flush(self)
        end
        return true
    end

    return send(self, { line, payload, CRLF })
end


---------------------------------------------------------------------------
-- subscriptions

-- registers a subscription; returns nsid, frames (SUB, and UNSUB max)
local function add_sub(self, subject, callback, queue, max)
    local qlen = queue and #queue or 0
    local sidbuf = ffi_new("uint64_t[1]")
    reset_errlen(self)
    local rc = C.resty_nats_subs_add(self._subtab, subject, #subject, queue,
                                     qlen, sidbuf, self._errbuf,
                                     self._errlen)
    if rc ~= OK then
        return nil, last_error(self)
    end

    local sid = sidbuf[0]
    local line, err = frame_call(self, C.resty_nats_frame_sub, subject,
                                 #subject, queue, qlen, sid, self._errbuf,
                                 self._errlen)
    if not line then
        C.resty_nats_subs_remove(self._subtab, sid)
        return nil, err
    end

    local nsid = tonumber(sid)
    local frames = { line }
    if max and max > 0 then
        C.resty_nats_subs_set_max(self._subtab, sid, max)
        local uline
        uline, err = frame_call(self, C.resty_nats_frame_unsub, sid, max,
                                self._errbuf, self._errlen)
        if not uline then
            C.resty_nats_subs_remove(self._subtab, sid)
            return nil, err
        end
        frames[2] = uline
    end

    self._subs[nsid] = { callback = callback, sid = tostring(nsid),
                         subject = subject, queue = queue }
    self._nsubs = self._nsubs + 1
    return nsid, frames
end


-- subscribe(subject, callback [, { queue = "q", max = n }])
function _M.subscribe(self, subject, callback, opts)
    local bad = unusable(self, subject)
    if bad then
        return false, bad
    end

    if type(callback) ~= "function" then
        return false, "callback is not a function"
    end

    local queue, max
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to 'subscribe' (table expected, got "
                  .. type(opts) .. ")", 2)
        end
        queue = opts.queue
        if queue ~= nil and type(queue) ~= "string" then
            return false, "queue is not a string"
        end
        max = opts.max
        if max ~= nil and (type(max) ~= "number" or max < 0
                           or max % 1 ~= 0)
        then
            return false, "max is not a non-negative integer"
        end
    end

    local nsid, frames = add_sub(self, subject, callback, queue, max)
    if not nsid then
        return false, frames
    end

    local sid = self._subs[nsid].sid
    local ok, err = send(self, frames)
    if not ok then
        drop_sub(self, nsid)
        return false, err
    end

    return sid
end


-- unsubscribe(sid [, max]): at once, or after max messages in all
function _M.unsubscribe(self, sid, max)
    if not self._connected then
        return false, "not connected"
    end

    local nsid = tonumber(sid)
    if not nsid or not self._subs[nsid] or nsid == self._inbox_sid then
        return false, "unknown sid"
    end

    if max ~= nil and (type(max) ~= "number" or max < 0 or max % 1 ~= 0) then
        return false, "max is not a non-negative integer"
    end
    max = max or 0

    local line, err = frame_call(self, C.resty_nats_frame_unsub, nsid, max,
                                 self._errbuf, self._errlen)
    if not line then
        return false, err
    end

    if max > 0 then
        if C.resty_nats_subs_set_max(self._subtab, nsid, max) == DONE then
            self._subs[nsid] = nil
            self._nsubs = self._nsubs - 1
        end
    else
        drop_sub(self, nsid)
    end

    local ok
    ok, err = send(self, line)
    if not ok then
        return false, err
    end

    return true
end


---------------------------------------------------------------------------
-- request/reply: one wildcard inbox subscription per connection

local function inbox_frames(self)
    if self._inbox_sid then
        return nil
    end

    local buf = scratch
    if C.resty_nats_random_token(buf, INBOX_TOKEN_LEN) ~= OK then
        return nil, "no randomness for the inbox"
    end
    local prefix = "_INBOX." .. ffi_string(buf, INBOX_TOKEN_LEN) .. "."

    local nsid, frames = add_sub(self, prefix .. "*", false)
    if not nsid then
        return nil, frames
    end
    self._inbox_sid = nsid
    self._inbox_prefix = prefix
    return frames
end


-- sends the request; returns the response entry, or nil, err
local function send_request(self, subject, payload, headers, entry)
    if type(subject) ~= "string" then
        return nil, "subject is not a string"
    end

    local frames, err = inbox_frames(self)
    if err then
        return nil, err
    end
    frames = frames or {}

    -- unpredictable: the inbox outlives a checkout, and a responder of an
    -- earlier user must not be able to answer a later user's request
    local buf = scratch
    if C.resty_nats_random_token(buf, REPLY_TOKEN_LEN) ~= OK then
        return nil, "no randomness for the reply token"
    end
    local token = ffi_string(buf, REPLY_TOKEN_LEN)
    local reply = self._inbox_prefix .. token

    local line
    line, err = message_frames(self, subject, payload, reply, headers)
    if not line then
        return nil, err
    end

    local n = #frames
    frames[n + 1] = line
    frames[n + 2] = payload
    frames[n + 3] = CRLF

    local ok
    ok, err = send(self, frames)
    if not ok then
        return nil, err
    end

    self._resp[token] = entry
    self._nresp = self._nresp + 1
    entry.token = token
    return entry
end


-- request(subject, payload, callback): the reply goes to callback from
-- wait(); returns true or false, err.
-- request(subject, payload [, { timeout = ms, headers = {...} }]):
-- waits for the reply; returns msg, or nil, err ("timeout",
-- "no responders", ...)
function _M.request(self, subject, payload, opts)
    if type(opts) == "function" then
        local bad = unusable(self, subject)
        if bad then
            return false, bad
        end
        payload = check_payload(payload, "request")
        local entry, err = send_request(self, subject, payload, nil,
                                        { callback = opts })
        if not entry then
            return false, err
        end
        return true
    end

    if opts ~= nil and type(opts) ~= "table" then
        -- the seed API's callback form with a non-function
        if not self._connected then
            return false, "not connected"
        end
        return false, "callback is not a function"
    end

    if not self._connected then
        return nil, "not connected"
    end

    payload = check_payload(payload, "request")
    -- default: the read timeout set on the object, else 5 s but never
    -- longer than nginx.conf's lua_socket_read_timeout
    local timeout = opts and opts.timeout or explicit_read_timeout(self)
    if not timeout then
        timeout = read_timeout(self)
        if timeout > DEFAULT_REQUEST_TIMEOUT then
            timeout = DEFAULT_REQUEST_TIMEOUT
        end
    end
    if type(timeout) ~= "number" or timeout <= 0 then
        error("bad timeout for 'request' (a positive number of ms expected)",
              2)
    end

    local entry, err = send_request(self, subject, payload,
                                    opts and opts.headers, {})
    if not entry then
        return nil, err
    end

    local deadline = now_ms() + timeout

    if self._reading then
        -- another light thread reads this connection: it will hand us
        -- our reply, or the socket when it is done
        if not semaphore then
            self._resp[entry.token] = nil
            self._nresp = self._nresp - 1
            return nil, "busy: another light thread is reading this "
                        .. "connection"
        end
        entry.sema = semaphore.new()
        while true do
            local left = deadline - now_ms()
            if left <= 0 or not entry.sema:wait(left / 1000) then
                if not entry.done then
                    self._resp[entry.token] = nil
                    self._nresp = self._nresp - 1
                    return nil, "timeout"
                end
            end
            if entry.done then
                if entry.msg then
                    return entry.msg
                end
                return nil, entry.err
            end
            if entry.takeover and not self._reading then
                entry.takeover = false
                break
            end
        end
    end

    local ok
    ok, err = read_until(self, deadline, nil, stop_entry_done, false, entry)
    if entry.done then
        if entry.msg then
            return entry.msg
        end
        return nil, entry.err
    end

    if self._resp[entry.token] then
        self._resp[entry.token] = nil
        self._nresp = self._nresp - 1
    end
    return nil, err or "timeout"
end


---------------------------------------------------------------------------
-- reading

-- wait(n): processes server traffic until n messages were delivered to
-- this object's callbacks (n nil or 0: until an error or a timeout)
function _M.wait(self, quantity)
    if not self._connected then
        return false, "not connected"
    end

    quantity = tonumber(quantity) or 0
    local target = self._delivered + quantity

    -- the read timeout counts from the last message delivered, not from
    -- the last byte: server PINGs do not keep wait() from timing out
    local rt = read_timeout(self)
    local deadline
    if rt > 0 then
        deadline = now_ms() + rt
    else
        rt = nil
    end

    if quantity > 0 then
        return read_until(self, deadline, rt, stop_delivered, false, target)
    end
    return read_until(self, deadline, rt, stop_never)
end


-- sends a PING (after whatever publish() buffered); returns its number,
-- which its PONG will bring self._pongs to, or nil, err
local function send_ping(self)
    local ok, err = send(self, PING)
    if not ok then
        return nil, err
    end
    local mine = self._pings + 1
    self._pings = mine
    self._ping_sent = self._sent
    return mine
end


-- flush([timeout]): a PING/PONG round trip: everything sent before was
-- processed by the server; messages arriving meanwhile are dispatched
function _M.flush(self, timeout)
    if not self._connected then
        return false, "not connected"
    end

    local mine, err = send_ping(self)
    if not mine then
        return false, err
    end
    timeout = timeout or read_timeout(self)
    local deadline
    if timeout > 0 then
        deadline = now_ms() + timeout
    end

    -- a non-fatal -ERR (a permissions violation) is reported after the
    -- PONG, so that the next flush counts its own PONG
    local ok
    ok, err = read_until(self, deadline, nil, stop_pongs, true, mine)
    if not ok then
        return false, err
    end
    return true
end


-- drain([timeout]): unsubscribes everything, processes what is still in
-- flight (a flush round trip), then closes the connection
function _M.drain(self, timeout)
    if not self._connected then
        return false, "not connected"
    end

    local frames = {}
    for nsid in pairs(self._subs) do
        local line = frame_call(self, C.resty_nats_frame_unsub, nsid, 0,
                                self._errbuf, self._errlen)
        frames[#frames + 1] = line
    end

    if #frames > 0 then
        local ok, err = send(self, frames)
        if not ok then
            return false, err
        end
    end

    local ok, err = self:flush(timeout)
    for nsid in pairs(self._subs) do
        drop_sub(self, nsid)
    end
    self._inbox_sid = nil
    self:close()
    if not ok then
        return false, err
    end
    return true
end


---------------------------------------------------------------------------
-- the connection's life

-- answers every complete event in the parser that needs no caller: used
-- before pooling; returns true when the parser is empty afterwards
local function drain_idle(self)
    local p = self._parser
    local ev = self._ev
    while true do
        reset_errlen(self)
        local rc = C.resty_nats_parser_next(p, ev, self._errbuf,
                                            self._errlen)
        if rc == AGAIN then
            return C.resty_nats_parser_buffered(p) == 0
        end

        if rc ~= OK then
            return nil, "protocol error: " .. last_error(self)
        end

        local t = ev.type
        if t == EV_PING then
            local ok, err = send(self, PONG)
            if not ok then
                return nil, err
            end

        elseif t == EV_MSG or t == EV_HMSG then
            -- a message for a subscription that is gone is dropped; one
            -- for a live subscription means unread messages
            local nsid = tonumber(ev.sid)
            if self._subs[nsid] and nsid ~= self._inbox_sid then
                return nil, "unread messages"
            end

        elseif t == EV_ERR then
            return nil, ffi_string(ev.payload.data, ev.payload.len)

        elseif t == EV_INFO then
            local ok, err = apply_info(self, ev)
            if not ok then
                return nil, err
            end
        end
        -- PONG, +OK: nothing to do
    end
end


function _M.set_keepalive(self, timeout, size)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    if not self._connected then
        return nil, "closed"
    end

    if self._reading then
        return nil, "busy: another light thread is reading this connection"
    end

    local inbox_only = self._inbox_sid and self._nsubs == 1
    if (self._nsubs > 0 and not inbox_only) or self._nresp > 0 then
        return nil, "subscribed state"
    end

    if self._info and self._info.ldm then
        -- the server is shutting down: don't keep its connections
        self:close()
        return nil, "server in lame duck mode"
    end

    -- the inbox stays subscribed: the slot hands it to the next checkout
    -- (its replies are routed by unpredictable tokens, and a late reply
    -- reaching the idle pooled connection gets it closed, not answered)

    local reg, slot = self._slot_reg, self._slot
    local cap = size or self._pool_cap or location_pool_size()
    if not reg or slot > cap then
        -- more connections idle than the pool holds: as a full cosocket
        -- pool does with its oldest one, close it
        self:close()
        return 1
    end

    local ok, err = write_flush(self)
    if ok then
        ok, err = drain_idle(self)
    end
    if not ok then
        self:close()
        return nil, err or "unread data"
    end

    -- a lua-nginx-module patched with patches/ answers server PINGs on
    -- idle pooled connections; the stock pool closes them at the first
    -- byte (see README: set_keepalive)
    local keepalive = sock.setkeepalive_nats or sock.setkeepalive

    -- one connection per slot pool (see slots_by_pool)
    ok, err = keepalive(sock, timeout, 1)
    if not ok and err == "connection in dubious state" then
        -- bytes arrived after the last read (a server PING, say): take
        -- them in, answer them and try once more
        local data
        data, err = sock:receiveany(READ_SIZE)
        if data then
            reset_errlen(self)
            if C.resty_nats_parser_feed(self._parser, data, #data,
                                        self._errbuf, self._errlen) ~= OK
            then
                self:close()
                return nil, "protocol error: " .. last_error(self)
            end
            ok, err = drain_idle(self)
            if ok then
                ok, err = keepalive(sock, timeout, 1)
            end
        end
        if not ok then
            self:close()
            return nil, err or "unread data"
        end
    end

    if ok then
        local inbox_sid = self._inbox_sid
        reg.state[slot] = {
            info = self._info,
            inbox_sid = inbox_sid,
            inbox_subject = inbox_sid and self._subs[inbox_sid].subject,
            inbox_prefix = self._inbox_prefix,
            next_sid = tonumber(C.resty_nats_subs_next_sid(self._subtab)),
        }
    end
    slot_release(self)

    self._connected = false
    self._parser = nil
    self._subtab = nil
    if not ok then
        return nil, err
    end
    return ok
end


function _M.get_reused_times(self)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    return sock:getreusedtimes()
end


-- Before a close: sends what is buffered and a PING, then reads up to
-- its PONG (answering PINGs, dropping messages), within the read timeout.
-- Closing a socket with unread input makes the kernel reset the
-- connection and drop what it has not sent yet: after a long burst of
-- publishes, the tail of the burst. Errors end it quietly: close()
-- closes anyway.
local function settle(self)
    local mine = send_ping(self)
    if not mine then
        return
    end
    local deadline = now_ms() + read_timeout(self)
    while self._connected and self._pongs < mine do
        local ev = next_event(self, deadline)
        if not ev then
            return
        end
        local t = ev.type
        if t ~= EV_MSG and t ~= EV_HMSG then
            handle_control(self, ev)
        end
    end
end


function _M.close(self)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    local was = self._connected
    if was and self._reading then
        -- another light thread is reading: no round trip from here
        write_flush(self)
    elseif was and (self._olen > 0 or self._sent ~= self._acked) then
        -- what publish() buffered still goes out, and the server confirms
        -- it took everything in (see settle)
        settle(self)
    end
    self._connected = false
    if was then
        fail_waiters(self, "closed")
    end
    self._parser = nil
    self._subtab = nil
    slot_release(self)
    return sock:close()
end


-- what the server said in INFO (a table: server_id, version,
-- max_payload, headers, proto, connect_urls, ldm, ...), or nil
function _M.server_info(self)
    return self._info
end


return _M
