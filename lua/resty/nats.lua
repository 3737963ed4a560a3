-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats: a NATS client for lua-nginx-module on cosockets, with the
-- protocol (parser, framer, subscription table) in the C++ core of
-- ngx_http_lua_nats_module, called through LuaJIT's FFI.

local ffi = require "ffi"

local ffi_new = ffi.new
local ffi_string = ffi.string
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
local str_lower = string.lower
local str_find = string.find
local str_sub = string.sub


local _M = { _VERSION = "0.1.0" }
local mt = { __index = _M }


-- mirrors src/resty_nats.h between "cdef begin" and "cdef end"
-- (t/unit checks that the two stay identical)
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
    int                         status;     /* HMSG: NATS/1.0 status, or 0 */
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
 * CSPRNG (getrandom(2), per call: nothing is seeded before fork). For
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


local OK = 0
local ERROR = -1
local AGAIN = -2
local DONE = 1
local DECLINED = -5

local EV_INFO = 1
local EV_MSG = 2
local EV_HMSG = 3
local EV_PING = 4
local EV_PONG = 5
local EV_OK = 6
local EV_ERR = 7

local READ_SIZE = 65536
local ERRBUF_SIZE = 256
local FRAME_SIZE = 4096
local INBOX_TOKEN_LEN = 22
local DEFAULT_MAX_PAYLOAD = 1048576

local PING = "PING\r\n"
local PONG = "PONG\r\n"
local CRLF = "\r\n"

local str_t = ffi.typeof("resty_nats_str_t")

-- server facts learnt from INFO, cached per worker by pool name: a
-- connection taken from the pool gets no INFO again
local server_info_by_pool = {}


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

    return setmetatable({
        _sock = sock,
        _errbuf = ffi_new("char[?]", ERRBUF_SIZE),
        _sizes = ffi_new("size_t[2]"),
        _fbuf = ffi_new("char[?]", FRAME_SIZE),
        _fsize = FRAME_SIZE,
        _ev = ffi_new("resty_nats_event_t"),
    }, mt)
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


local function last_error(self)
    local sizes = self._sizes
    return ffi_string(self._errbuf, sizes[1])
end


local function reset_errlen(self)
    self._sizes[1] = ERRBUF_SIZE
end


-- calls a framer with the per-object frame buffer, growing it when the
-- frame does not fit; returns the frame as a Lua string or nil, err
local function frame_call(self, f, ...)
    -- the framers take (buf, size, n, args..., err, errlen)
    local sizes = self._sizes
    while true do
        sizes[1] = ERRBUF_SIZE
        local rc = f(self._fbuf, self._fsize, sizes, ...)
        if rc == OK then
            return ffi_string(self._fbuf, sizes[0])
        end

        if rc == AGAIN then
            local need = tonumber(sizes[0])
            if need <= self._fsize then
                return nil, "framer size probe failed"
            end
            self._fsize = need
            self._fbuf = ffi_new("char[?]", need)

        else
            return nil, ffi_string(self._errbuf, sizes[1])
        end
    end
end


-- closes the connection after a failure that leaves it unusable
local function fail(self, err)
    local sock = self._sock
    if sock and self._connected then
        sock:close()
    end
    self._connected = false
    return false, err
end


-- answers every complete event in the parser that needs no caller: used
-- before pooling; returns true when the parser is empty afterwards
local function drain_idle(self)
    local p = self._parser
    local ev = self._ev
    while true do
        reset_errlen(self)
        local rc = C.resty_nats_parser_next(p, ev, self._errbuf,
                                            self._sizes + 1)
        if rc == AGAIN then
            return C.resty_nats_parser_buffered(p) == 0
        end

        if rc ~= OK then
            return nil, "protocol error: " .. last_error(self)
        end

        local t = ev.type
        if t == EV_PING then
            local _, err = self._sock:send(PONG)
            if err then
                return nil, err
            end

        elseif t == EV_MSG or t == EV_HMSG then
            -- a message for a subscription that is gone: dropped
            if self._subs[tonumber(ev.sid)] then
                return nil, "unread messages"
            end

        elseif t == EV_ERR then
            return nil, ffi_string(ev.payload.data, ev.payload.len)
        end
        -- PONG, +OK, INFO: nothing to do
    end
end


local function apply_info(self, ev)
    local info = ffi_new("resty_nats_info_t")
    reset_errlen(self)
    local rc = C.resty_nats_parser_info(self._parser, ev.payload.data,
                                        ev.payload.len, info, self._errbuf,
                                        self._sizes + 1)
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
        version = ffi_string(info.version.data, info.version.len),
        auth_required = info.auth_required ~= 0,
        tls_required = info.tls_required ~= 0,
        ldm = info.ldm ~= 0,
    }

    self._info = si
    if self._pool then
        -- what a connection taken from the pool will assume
        server_info_by_pool[self._pool] = si
    end
    self._max_payload = max_payload
    C.resty_nats_parser_set_max_payload(self._parser, max_payload)
    return si
end


-- reads from the socket into the parser until an event is ready
-- deadline (ms, from ngx.now()): when set, the read waits at most until
-- then, however much control traffic (server PINGs) arrives meanwhile
local function next_event(self, deadline)
    local p = self._parser
    local ev = self._ev
    while true do
        reset_errlen(self)
        local rc = C.resty_nats_parser_next(p, ev, self._errbuf,
                                            self._sizes + 1)
        if rc == OK then
            return ev
        end

        if rc ~= AGAIN then
            local err = "protocol error: " .. last_error(self)
            ngx_log(ngx_ERR, "nats: ", err, ", closing the connection")
            return nil, err, true
        end

        local sock = self._sock
        local to = deadline and self._timeouts
        if to then
            ngx_update_time()
            local left = deadline - ngx_now() * 1000
            if left <= 0 then
                return nil, "timeout"
            end
            if left >= to[3] then
                to = nil
            else
                sock:settimeouts(to[1], to[2], left)
            end
        end

        local data, err = sock:receiveany(READ_SIZE)
        if to then
            sock:settimeouts(to[1], to[2], to[3])
        end
        if not data then
            -- a read timeout leaves the connection usable
            return nil, err, err ~= "timeout"
        end

        reset_errlen(self)
        rc = C.resty_nats_parser_feed(p, data, #data, self._errbuf,
                                      self._sizes + 1)
        if rc ~= OK then
            local err = "protocol error: " .. last_error(self)
            ngx_log(ngx_ERR, "nats: ", err, ", closing the connection")
            return nil, err, true
        end
    end
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


-- handles one server event that is not a message; returns false, err
-- (and closes when fatal) for -ERR and protocol problems
local function handle_control(self, ev)
    local t = ev.type
    if t == EV_PING then
        local _, err = self._sock:send(PONG)
        if err then
            return fail(self, err)
        end

    elseif t == EV_PONG then
        if self._pings > 0 then
            self._pings = self._pings - 1
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


local function do_handshake(self, opts)
    local ev, err, fatal = next_event(self)
    if not ev then
        return nil, err
    end

    while ev.type == EV_PING do
        local _, serr = self._sock:send(PONG)
        if serr then
            return nil, serr
        end
        ev, err = next_event(self)
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

    local o = ffi_new("resty_nats_connect_opts_t")
    o.verbose = 0
    o.pedantic = 0
    o.tls_required = 0
    o.echo = -1
    o.protocol = 1
    o.headers = si.headers and 1 or 0
    o.no_responders = si.headers and 1 or 0
    local anchors = {}
    local function set_str(field, value)
        if value ~= nil then
            value = tostring(value)
            anchors[#anchors + 1] = value
            o[field].data = value
            o[field].len = #value
        end
    end
    set_str("lang", "lua")
    set_str("version", _M._VERSION)
    if opts then
        set_str("name", opts.name)
        set_str("user", opts.user)
        set_str("pass", opts.pass)
        set_str("auth_token", opts.token)
        if opts.echo ~= nil then
            o.echo = opts.echo and 1 or 0
        end
    end

    local frame
    frame, err = frame_call(self, C.resty_nats_frame_connect, o,
                            self._errbuf, self._sizes + 1)
    if not frame then
        return nil, err
    end

    local _
    _, err = self._sock:send({ frame, PING })
    if err then
        return nil, err
    end

    while true do
        ev, err, fatal = next_event(self)
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
            return nil, ffi_string(ev.payload.data, ev.payload.len)

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


-- connect(host, port [, opts]) or connect("unix:/path" [, opts])
function _M.connect(self, host, port, opts)
    local sock = self._sock
    if not sock then
        return false, "not initialized"
    end

    if type(port) == "table" then
        opts = port
        port = nil
    end

    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #3 to 'connect' (table expected, got "
              .. type(opts) .. ")", 2)
    end

    local pool = opts and opts.pool
    if not pool then
        pool = port and (tostring(host) .. ":" .. tostring(port))
               or tostring(host)
        if opts then
            -- a different identity needs a different pool
            pool = pool .. ":" .. tostring(opts.user or "") .. ":"
                   .. tostring(opts.token or opts.name or "")
        end
    end

    local ok, err
    if port then
        ok, err = sock:connect(host, port, { pool = pool,
                                             pool_size = opts
                                                 and opts.pool_size })
    else
        ok, err = sock:connect(host, { pool = pool,
                                       pool_size = opts and opts.pool_size })
    end
    if not ok then
        return false, err
    end

    -- fresh protocol state for every connect
    local errlen = self._sizes
    local pp = ffi_new("resty_nats_parser_t *[1]")
    if C.resty_nats_parser_new(pp, 0) ~= OK then
        sock:close()
        return false, "no memory"
    end
    self._parser = ffi_gc(pp[0], C.resty_nats_parser_free)

    local tp = ffi_new("resty_nats_subs_t *[1]")
    if C.resty_nats_subs_new(tp) ~= OK then
        sock:close()
        return false, "no memory"
    end
    self._subtab = ffi_gc(tp[0], C.resty_nats_subs_free)
    self._subs = {}
    self._nsubs = 0
    self._pings = 0
    self._pool = pool
    errlen[1] = ERRBUF_SIZE

    local reused = sock:getreusedtimes()
    if reused and reused > 0 then
        local si = server_info_by_pool[pool]
        if si then
            self._info = si
            self._max_payload = si.max_payload
            C.resty_nats_parser_set_max_payload(self._parser, si.max_payload)
            self._connected = true
            return true
        end
        -- a pooled connection this module knows nothing about: unusable
        sock:close()
        return false, "pooled connection without server info"
    end

    ok, err = do_handshake(self, opts)
    if not ok then
        sock:close()
        self._connected = false
        return false, err
    end

    self._connected = true
    return true
end


function _M.publish(self, subject, payload, reply_to)
    if not self._connected then
        return false, "not connected"
    end

    if type(subject) ~= "string" then
        return false, "subject is not a string"
    end

    if payload == nil then
        payload = ""
    elseif type(payload) ~= "string" then
        if type(payload) ~= "number" then
            error("bad argument #2 to 'publish' (string expected, got "
                  .. type(payload) .. ")", 2)
        end
        payload = tostring(payload)
    end

    local rlen = 0
    if reply_to ~= nil then
        if type(reply_to) ~= "string" then
            return false, "reply_to is not a string"
        end
        rlen = #reply_to
    end

    local line, err = frame_call(self, C.resty_nats_frame_pub, subject,
                                 #subject, reply_to, rlen, #payload,
                                 self._max_payload, self._errbuf,
                                 self._sizes + 1)
    if not line then
        return false, err
    end

    local _
    _, err = self._sock:send({ line, payload, CRLF })
    if err then
        return fail(self, err)
    end

    return true
end


local function add_sub(self, subject, callback, queue, max, is_request)
    local sids = self._sizes
    local qlen = queue and #queue or 0
    local sidbuf = ffi_new("uint64_t[1]")
    reset_errlen(self)
    local rc = C.resty_nats_subs_add(self._subtab, subject, #subject, queue,
                                     qlen, sidbuf, self._errbuf, sids + 1)
    if rc ~= OK then
        return nil, last_error(self)
    end

    local sid = sidbuf[0]
    local line, err = frame_call(self, C.resty_nats_frame_sub, subject,
                                 #subject, queue, qlen, sid, self._errbuf,
                                 self._sizes + 1)
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
                                self._errbuf, self._sizes + 1)
        if not uline then
            C.resty_nats_subs_remove(self._subtab, sid)
            return nil, err
        end
        frames[2] = uline
    end

    self._subs[nsid] = { callback = callback, sid = tostring(nsid),
                         subject = subject, is_request = is_request }
    self._nsubs = self._nsubs + 1
    return nsid, frames
end


local function drop_sub(self, nsid)
    if self._subs[nsid] then
        self._subs[nsid] = nil
        self._nsubs = self._nsubs - 1
    end
    C.resty_nats_subs_remove(self._subtab, nsid)
end


function _M.subscribe(self, subject, callback)
    if not self._connected then
        return false, "not connected"
    end

    if type(subject) ~= "string" then
        return false, "subject is not a string"
    end

    if type(callback) ~= "function" then
        return false, "callback is not a function"
    end

    local nsid, frames = add_sub(self, subject, callback)
    if not nsid then
        return false, frames
    end

    local _, err = self._sock:send(frames)
    if err then
        drop_sub(self, nsid)
        return fail(self, err)
    end

    return self._subs[nsid].sid
end


function _M.unsubscribe(self, sid)
    if not self._connected then
        return false, "not connected"
    end

    local nsid = tonumber(sid)
    if not nsid or not self._subs[nsid] then
        return false, "unknown sid"
    end

    local line, err = frame_call(self, C.resty_nats_frame_unsub, nsid, 0,
                                 self._errbuf, self._sizes + 1)
    if not line then
        return false, err
    end

    drop_sub(self, nsid)

    local _
    _, err = self._sock:send(line)
    if err then
        return fail(self, err)
    end

    return true
end


local function new_inbox(self)
    local buf = self._fbuf
    if C.resty_nats_random_token(buf, INBOX_TOKEN_LEN) ~= OK then
        return nil, "no randomness for the inbox"
    end
    return "_INBOX." .. ffi_string(buf, INBOX_TOKEN_LEN)
end


-- request(subject, payload, callback): the reply goes to callback from
-- wait(); the inbox subscription ends after one reply
function _M.request(self, subject, payload, callback)
    if not self._connected then
        return false, "not connected"
    end

    if type(subject) ~= "string" then
        return false, "subject is not a string"
    end

    if type(callback) ~= "function" then
        return false, "callback is not a function"
    end

    if payload == nil then
        payload = ""
    elseif type(payload) ~= "string" then
        if type(payload) ~= "number" then
            error("bad argument #2 to 'request' (string expected, got "
                  .. type(payload) .. ")", 2)
        end
        payload = tostring(payload)
    end

    -- validate the subject before anything is subscribed
    local line, err = frame_call(self, C.resty_nats_frame_pub, subject,
                                 #subject, nil, 0, #payload,
                                 self._max_payload, self._errbuf,
                                 self._sizes + 1)
    if not line then
        return false, err
    end

    local inbox
    inbox, err = new_inbox(self)
    if not inbox then
        return false, err
    end

    local nsid, frames = add_sub(self, inbox, callback, nil, 1, true)
    if not nsid then
        return false, frames
    end

    line, err = frame_call(self, C.resty_nats_frame_pub, subject, #subject,
                           inbox, #inbox, #payload, self._max_payload,
                           self._errbuf, self._sizes + 1)
    if not line then
        drop_sub(self, nsid)
        return false, err
    end

    local n = #frames
    frames[n + 1] = line
    frames[n + 2] = payload
    frames[n + 3] = CRLF

    local _
    _, err = self._sock:send(frames)
    if err then
        drop_sub(self, nsid)
        return fail(self, err)
    end

    return true
end


-- wait(n): processes server traffic until n messages were delivered to
-- this object's callbacks (n nil or 0: until an error or a timeout)
function _M.wait(self, quantity)
    if not self._connected then
        return false, "not connected"
    end

    quantity = tonumber(quantity) or 0
    local count = 0
    local subs = self._subs
    local subtab = self._subtab

    -- the read timeout counts from the last message delivered, not from
    -- the last byte: server PINGs do not keep wait() from timing out
    local rt = self._timeouts and self._timeouts[3]
    local deadline
    if rt and rt > 0 then
        ngx_update_time()
        deadline = ngx_now() * 1000 + rt
    end

    while true do
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
            local rc = sub and C.resty_nats_subs_deliver(subtab, ev.sid)
            if sub and (rc == OK or rc == DONE) then
                local msg = {
                    subject = ffi_string(ev.subject.data, ev.subject.len),
                    sid = sub.sid,
                    reply_to = ev.reply.len > 0
                               and ffi_string(ev.reply.data, ev.reply.len)
                               or nil,
                    payload = ffi_string(ev.payload.data, ev.payload.len),
                }
                if t == EV_HMSG then
                    msg.headers = build_headers(ev)
                    if ev.status ~= 0 then
                        msg.status = ev.status
                        msg.description = ffi_string(ev.description.data,
                                                     ev.description.len)
                    end
                end

                if rc == DONE then
                    subs[nsid] = nil
                    self._nsubs = self._nsubs - 1
                end

                if sub.is_request and msg.status == 503 then
                    -- the server's answer when nobody subscribes
                    if rc ~= DONE then
                        drop_sub(self, nsid)
                    end
                    return false, "no responders"
                end

                count = count + 1
                sub.callback(msg)
                if deadline then
                    deadline = ngx_now() * 1000 + rt
                end

                if quantity > 0 and count >= quantity then
                    return true
                end
            end

        else
            local ok
            ok, err = handle_control(self, ev)
            if not ok then
                return false, err
            end
        end
    end
end


function _M.set_keepalive(self, ...)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    if not self._connected then
        return nil, "closed"
    end

    if self._nsubs > 0 then
        return nil, "subscribed state"
    end

    if self._info and self._info.ldm then
        -- the server is shutting down: don't keep its connections
        self:close()
        return nil, "server in lame duck mode"
    end

    local ok, err = drain_idle(self)
    if not ok then
        self:close()
        return nil, err or "unread data"
    end

    -- a lua-nginx-module patched with patches/ answers server PINGs on
    -- idle pooled connections; the stock pool closes them at the first
    -- byte (see README: set_keepalive)
    local keepalive = sock.setkeepalive_nats or sock.setkeepalive

    ok, err = keepalive(sock, ...)
    if not ok and err == "connection in dubious state" then
        -- bytes arrived after the last read (a server PING, say): take
        -- them in, answer them and try once more
        local data
        data, err = sock:receiveany(READ_SIZE)
        if data then
            reset_errlen(self)
            if C.resty_nats_parser_feed(self._parser, data, #data,
                                        self._errbuf, self._sizes + 1) ~= OK
            then
                self:close()
                return nil, "protocol error: " .. last_error(self)
            end
            ok, err = drain_idle(self)
            if ok then
                ok, err = keepalive(sock, ...)
            end
        end
        if not ok then
            self:close()
            return nil, err or "unread data"
        end
    end

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


function _M.close(self)
    local sock = self._sock
    if not sock then
        return nil, "not initialized"
    end

    self._connected = false
    self._parser = nil
    self._subtab = nil
    return sock:close()
end


return _M
