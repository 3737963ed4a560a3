-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.events: events in, for both kinds of connection: reads from
-- the socket into the connection's parser until the next server operation
-- (within a deadline), the server's INFO, and messages as Lua tables.

local ffi = require "ffi"
local core = require "resty.nats.core"
local settings = require "resty.nats.settings"
local servers = require "resty.nats.servers"

local C = core.C
local OK = core.OK
local AGAIN = core.AGAIN
local EV_HMSG = core.EV_HMSG
local STATUS_INVALID_HEADERS = core.STATUS_INVALID_HEADERS
local DEFAULT_MAX_PAYLOAD = core.DEFAULT_MAX_PAYLOAD
local ERRBUF_SIZE = core.ERRBUF_SIZE
local errbuf = core.errbuf
local sizes = core.sizes
local errlen = core.errlen
local ev = core.ev
local info = core.info
local last_error = core.last_error
local read_timeout = settings.read_timeout
local learn = servers.learn

local ffi_gc = ffi.gc
local ffi_new = ffi.new
local ffi_string = ffi.string
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local type = type
local tonumber = tonumber
local math_ceil = math.ceil
local new_tab = require "table.new"


local _M = {
    READ_SIZE = 65536,
}

local READ_SIZE = _M.READ_SIZE


-- a fresh parser for a new connection; true, or nil, "no memory"
function _M.new_parser(c)
    local pp = ffi_new("resty_nats_parser_t *[1]")
    if C.resty_nats_parser_new(pp, 0) ~= OK then
        return nil, "no memory"
    end
    c._parser = ffi_gc(pp[0], C.resty_nats_parser_free)
    c._max_payload = DEFAULT_MAX_PAYLOAD
    return true
end


-- bytes read outside next_event (before pooling) into the parser; true,
-- or nil, err (a protocol error: the connection must be closed)
function _M.feed(c, data)
    sizes[1] = ERRBUF_SIZE
    if C.resty_nats_parser_feed(c._parser, data, #data, errbuf, errlen)
       ~= OK
    then
        return nil, "protocol error: " .. last_error()
    end
    return true
end


-- the server's INFO (ev's payload) applied to connection c; the info
-- table, or nil, err
function _M.apply_info(c, e)
    sizes[1] = ERRBUF_SIZE
    local rc = C.resty_nats_parser_info(c._parser, e.payload.data,
                                        e.payload.len, info, errbuf, errlen)
    if rc ~= OK then
        return nil, "bad INFO: " .. last_error()
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
        local key = c._cluster_key
        if key then
            learn(key, list)
        end
    end

    if si.ldm then
        ngx_log(ngx_WARN, c._log_prefix, "server ", si.server_id,
                " entered lame duck mode")
    end

    c._info = si
    c._max_payload = max_payload
    C.resty_nats_parser_set_max_payload(c._parser, max_payload)
    return si
end


local function protocol_error(c)
    local err = "protocol error: " .. last_error()
    ngx_log(ngx_ERR, c._log_prefix, err, ", closing the connection")
    return nil, err, true
end


-- Reads from the socket into the parser until an event is ready.
-- deadline (ms, as ngx.now() * 1000): when set, the read waits at most
-- until then, however much control traffic arrives meanwhile. Output the
-- connection holds (c._olen bytes, c:_flush()) goes out before it waits.
-- Returns the event, or nil, err, fatal
local function read_event(c, deadline)
    local p = c._parser
    -- the socket of this read (a shared connection's move to another
    -- server replaces c's while it waits: see resty.nats.shared.move)
    local sock = c._sock
    while true do
        sizes[1] = ERRBUF_SIZE
        local rc = C.resty_nats_parser_next(p, ev, errbuf, errlen)
        if rc == OK then
            return ev
        end
        if rc ~= AGAIN then
            return protocol_error(c)
        end

        if c._olen > 0 then
            local ok, err = c:_flush()
            if not ok then
                return nil, err, true
            end
        end

        local to = deadline and c._timeouts
        local restore = false
        if deadline then
            ngx_update_time()
            local left = deadline - ngx_now() * 1000
            if left <= 0 then
                return nil, "timeout"
            end
            if left < read_timeout(c) then
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

        sizes[1] = ERRBUF_SIZE
        if C.resty_nats_parser_feed(p, data, #data, errbuf, errlen) ~= OK then
            return protocol_error(c)
        end
    end
end


-- The next event of connection c (the worker's event struct, valid until
-- the next call and read before any yield), or nil, err, fatal. The fast
-- path is loop-free so that LuaJIT compiles it into the caller's loop: an
-- event already parsed; read_event() reads when there is none.
function _M.next_event(c, deadline)
    sizes[1] = ERRBUF_SIZE
    if C.resty_nats_parser_next(c._parser, ev, errbuf, errlen) == OK then
        return ev
    end
    return read_event(c, deadline)
end


-- the next event already in the parser (no read): the event; nil when the
-- parser needs more bytes; nil, err on a protocol error
function _M.parsed_event(c)
    sizes[1] = ERRBUF_SIZE
    local rc = C.resty_nats_parser_next(c._parser, ev, errbuf, errlen)
    if rc == OK then
        return ev
    end
    if rc == AGAIN then
        return nil
    end
    return nil, "protocol error: " .. last_error()
end


-- bytes the parser holds that are not events yet
function _M.buffered(c)
    return C.resty_nats_parser_buffered(c._parser)
end


-- a header value into a message's headers: a string, or a list of them
-- when the name comes more than once
local function add_header(headers, k, v)
    local old = headers[k]
    if old == nil then
        headers[k] = v
    elseif type(old) == "table" then
        old[#old + 1] = v
    else
        headers[k] = { old, v }
    end
end
_M.add_header = add_header


local function build_headers(e)
    local n = tonumber(e.nheaders)
    local headers = {}
    for i = 0, n - 1 do
        local h = e.headers[i]
        add_header(headers, ffi_string(h.name.data, h.name.len),
                   ffi_string(h.value.data, h.value.len))
    end
    return headers
end


-- a payload of len bytes at data as a list of strings of at most split
-- bytes each, of equal sizes but the last
local function payload_parts(data, len, split)
    local n = math_ceil(len / split)
    local each = math_ceil(len / n)
    local parts = new_tab(n, 0)
    local from = 0
    for i = 1, n do
        local k = len - from < each and len - from or each
        parts[i] = ffi_string(data + from, k)
        from = from + k
    end
    return parts
end
_M.payload_parts = payload_parts


-- the message of a MSG or HMSG event, for the subscription with sid.
-- split (a subscription's _split: its reader takes a payload in parts):
-- a payload over split bytes is a list of strings of at most split bytes
-- (LuaJIT gives a string from 128 KiB on a mapping of its own, made,
-- faulted in page by page and unmapped for each one: 25 times the cost
-- of a smaller one)
function _M.build_msg(e, sid, split)
    local len = e.payload.len
    local msg = {
        subject = ffi_string(e.subject.data, e.subject.len),
        sid = sid,
        reply_to = e.reply.len > 0
                   and ffi_string(e.reply.data, e.reply.len) or nil,
        payload = (split and len > split)
                  and payload_parts(e.payload.data, tonumber(len), split)
                  or ffi_string(e.payload.data, len),
    }
    if e.type == EV_HMSG then
        local status = e.status
        if status == STATUS_INVALID_HEADERS then
            -- a publisher sent a header block that is not valid: the
            -- message keeps its payload, loses its headers
            msg.header_error = ffi_string(e.description.data,
                                          e.description.len)
        else
            msg.headers = build_headers(e)
            if status ~= 0 then
                msg.status = status
                msg.description = ffi_string(e.description.data,
                                             e.description.len)
            end
        end
    end
    return msg
end


return _M
