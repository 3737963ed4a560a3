-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.core: the FFI binding of the C++ protocol core (parser,
-- framer, subscription table, tokens; src/resty_nats.h) and of the nginx
-- module's calls into nginx (nginx.conf's cosocket settings, request
-- ends), the ABI's constants and the worker's scratch structs for C calls.
-- Everything else of resty.nats calls C through here.

local ffi = require "ffi"

local C = ffi.C
local ffi_string = ffi.string
local pcall = pcall
local type = type
local error = error
local str_format = string.format
local math_floor = math.floor


local _M = {}


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
 * resty_nats_parser_next() or resty_nats_parser_free() on the same
 * parser.
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
 * sticky: every later call of feed() or next() returns it again with the
 * same message until the parser is freed. A protocol error means the
 * connection must be closed.
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
 * Framers: see the conventions at the top of this file. What they refuse,
 * with a message naming the problem:
 * subject (PUB, HPUB) and reply: dot-separated non-empty tokens of bytes
 *          33-126 (bytes 128-255 of UTF-8 text are allowed too); the
 *          tokens "*" and ">" are refused (they are wildcards), "*" or ">"
 *          inside a longer token is literal.
 * SUB subject: as subject, and "*" may be a token, ">" may be the last.
 * queue: non-empty when given (queue_len > 0), no byte below 33 nor 127
 *          (dots and UTF-8 allowed).
 */
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
/*
 * Registers a subscription and frames it, in one call: writes
 * "SUB <subject> [queue] <sid>\r\n" into buf and, when max > 0,
 * "UNSUB <sid> <max>\r\n" right after it; queue_len 0 means no queue
 * group. Buffer and codes as for the framers (see the top of this file):
 * - RESTY_NATS_OK: *n is the bytes written (send all of them) and *sid the
 *   new subscription's sid; it is registered with max set as by
 *   resty_nats_subs_set_max() (0: no limit), so resty_nats_subs_deliver()
 *   returns RESTY_NATS_DONE on the max-th message;
 * - RESTY_NATS_AGAIN: buf is too small, *n is the size needed for both
 *   lines; nothing is registered and no sid is used: a call with a larger
 *   buffer gets the same sid;
 * - RESTY_NATS_ERROR with err set: the subject (SUB rules above) or the
 *   queue is refused, the SUB line is over RESTY_NATS_MAX_CONTROL_LINE, or
 *   no sid is left; nothing is registered, nothing must be sent.
 * *sid is written on RESTY_NATS_OK only.
 */
int resty_nats_subs_subscribe(resty_nats_subs_t *t, char *buf, size_t size,
    size_t *n, const char *subject, size_t subject_len, const char *queue,
    size_t queue_len, uint64_t max, uint64_t *sid, char *err,
    size_t *errlen);
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

/*
 * Fills buf with len characters of [A-Za-z0-9] drawn from the kernel's
 * CSPRNG (getrandom(2), a page at a time into a per-thread buffer that a
 * forked child finds empty: no two processes share a sequence). For
 * unpredictable inbox names. RESTY_NATS_ERROR if no randomness is
 * available.
 */
int resty_nats_random_token(char *buf, size_t len);

/* the metadata in the reply subject of a JetStream consumer's message */
typedef struct resty_nats_js_meta_s {
    resty_nats_str_t  domain;       /* empty: none (or "_") */
    resty_nats_str_t  stream;
    resty_nats_str_t  consumer;
    uint64_t          delivered;    /* times delivered, this one included */
    uint64_t          stream_seq;
    uint64_t          consumer_seq;
    uint64_t          timestamp;    /* ns since the epoch */
    uint64_t          pending;      /* messages left for the consumer */
} resty_nats_js_meta_t;

/*
 * Parses a JetStream acknowledgement subject: "$JS.ACK.<stream>.
 * <consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>" (9 tokens), or
 * with "<domain>.<account hash>." after "$JS.ACK." (11 tokens or more;
 * only the first 16 are looked at). RESTY_NATS_OK with *out filled (its
 * strings point into s); RESTY_NATS_DECLINED when s is not such a subject
 * (another token count, an empty token, a number with another byte than a
 * digit or over 2^64 - 1); RESTY_NATS_ERROR when out is NULL or s is NULL
 * with len > 0. Allocates nothing.
 */
int resty_nats_js_meta(const char *s, size_t len, resty_nats_js_meta_t *out);

]]
end


-- The ABI comes with ngx_http_lua_nats_module: nginx loads it with
-- RTLD_GLOBAL (or links it in), so its symbols are in ffi.C.
if not pcall(function() return C.resty_nats_version end) then
    error("resty.nats: the NATS core is not loaded: add 'load_module "
          .. "modules/ngx_http_lua_nats_module.so;' to nginx.conf", 2)
end
_M.C = C


-- the constants of the ABI, from the cdef'd enums
_M.OK = C.RESTY_NATS_OK
_M.ERROR = C.RESTY_NATS_ERROR
_M.AGAIN = C.RESTY_NATS_AGAIN
_M.DECLINED = C.RESTY_NATS_DECLINED
_M.DONE = C.RESTY_NATS_DONE
_M.EV_INFO = C.RESTY_NATS_EV_INFO
_M.EV_MSG = C.RESTY_NATS_EV_MSG
_M.EV_HMSG = C.RESTY_NATS_EV_HMSG
_M.EV_PING = C.RESTY_NATS_EV_PING
_M.EV_PONG = C.RESTY_NATS_EV_PONG
_M.EV_OK = C.RESTY_NATS_EV_OK
_M.EV_ERR = C.RESTY_NATS_EV_ERR
_M.STATUS_INVALID_HEADERS = C.RESTY_NATS_STATUS_INVALID_HEADERS
_M.MAX_CONTROL_LINE = C.RESTY_NATS_MAX_CONTROL_LINE
_M.DEFAULT_MAX_PAYLOAD = C.RESTY_NATS_DEFAULT_MAX_PAYLOAD

-- the version: the core's (CMakeLists.txt's project version)
do
    local v = C.resty_nats_version()
    _M.VERSION = str_format("%d.%d.%d", math_floor(v / 10000),
                            math_floor(v / 100) % 100, v % 100)
end


-- Per worker, as lua-resty-core's get_errmsg_ptr and get_size_ptr: the
-- error text buffer, the size outputs and the event and INFO structs that
-- every C call fills. Each is read right after the call that filled it,
-- with no yield in between, so that nothing of one call (or connection,
-- or request) is left there for the next.
local ERRBUF_SIZE = 256
local errbuf = ffi.new("char[?]", ERRBUF_SIZE)
local sizes = ffi.new("size_t[2]")      -- [0]: a frame's size, [1]: errlen
_M.ERRBUF_SIZE = ERRBUF_SIZE
_M.errbuf = errbuf
_M.sizes = sizes
_M.errlen = sizes + 1
_M.ev = ffi.new("resty_nats_event_t")
_M.info = ffi.new("resty_nats_info_t")


-- the text of the last error a C call wrote
function _M.last_error()
    return ffi_string(errbuf, sizes[1])
end


function _M.reset_errlen()
    sizes[1] = ERRBUF_SIZE
end


-- nginx.conf's cosocket settings where the caller runs (its location; a
-- timer's: where it was created), read by the nginx module: the
-- lua_socket_connect/send/read_timeout a cosocket created there starts
-- with, and lua_socket_pool_size. nil where they cannot be known (plain
-- LuaJIT, no lua-resty-core, an nginx module without the call).
do
    local ok, base = pcall(require, "resty.core.base")
    if ok and type(base) == "table" and base.get_request then
        _M.get_request = base.get_request
        pcall(ffi.cdef, [[
int ngx_http_lua_nats_ffi_socket_conf(void *r, uint64_t *out);
int ngx_http_lua_nats_ffi_on_request_end(void *r, uint64_t id);
int ngx_http_lua_nats_ffi_ended(uint64_t *out, int max);
]])
        if pcall(function()
                     return ffi.C.ngx_http_lua_nats_ffi_socket_conf
                 end)
        then
            _M.socket_conf = ffi.C.ngx_http_lua_nats_ffi_socket_conf
        end
        -- request ends, for what a shared connection holds on a request's
        -- behalf: on_request_end(r, id) records id when r ends, ended(buf,
        -- max) takes the ids recorded since
        if pcall(function()
                     return ffi.C.ngx_http_lua_nats_ffi_ended
                 end)
        then
            _M.on_request_end = ffi.C.ngx_http_lua_nats_ffi_on_request_end
            _M.ended = ffi.C.ngx_http_lua_nats_ffi_ended
        end
    end
end


return _M
