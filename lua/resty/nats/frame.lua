-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.frame: frames out, for both kinds of connection. The one way
-- to frame a message (frame_msg: the PUB or HPUB control part into a byte
-- buffer, from the worker's cache of "PUB <subject> " prefixes when the
-- subject was accepted before), control frames through the core's framers
-- (call), the payload argument, random tokens, and the worker's scratch
-- buffer they use.

local ffi = require "ffi"
local core = require "resty.nats.core"

local C = core.C
local OK = core.OK
local AGAIN = core.AGAIN
local ERRBUF_SIZE = core.ERRBUF_SIZE
local errbuf = core.errbuf
local sizes = core.sizes
local errlen = core.errlen
local last_error = core.last_error

local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_copy = ffi.copy
local type = type
local tostring = tostring
local tonumber = tonumber
local pairs = pairs
local ipairs = ipairs
local next = next
local error = error
local tab_sort = table.sort
local floor = math.floor


local _M = {
    PING = "PING\r\n",
    PONG = "PONG\r\n",
    CRLF = "\r\n",
    -- the room a PUB control line needs beyond its subject and reply
    PUB_ROOM = 32,
}

local PUB_ROOM = _M.PUB_ROOM


-- The worker's scratch buffer, as lua-resty-core's get_string_buf: each
-- use fills it and copies it out (into a Lua string, or a cosocket send
-- that copies at the call) with no yield in between, so it never carries
-- anything from one call, connection or request to the next.
local SCRATCH_MIN = 65536
local scratch = ffi_new("char[?]", SCRATCH_MIN)
local scratch_size = SCRATCH_MIN


-- the scratch buffer with room for n bytes at least, and its size
local function get_buf(n)
    if n > scratch_size then
        local size = scratch_size
        repeat
            size = size * 2
        until size >= n
        scratch = ffi_new("char[?]", size)
        scratch_size = size
    end
    return scratch, scratch_size
end
_M.get_buf = get_buf


-- calls a framer f(buf, size, sizes, args..., err, errlen) with the
-- scratch buffer, larger when the frame does not fit; returns the frame as
-- a Lua string, or nil, err
function _M.call(f, ...)
    while true do
        sizes[1] = ERRBUF_SIZE
        local rc = f(scratch, scratch_size, sizes, ...)
        if rc == OK then
            return ffi_string(scratch, sizes[0])
        end
        if rc ~= AGAIN then
            return nil, last_error()
        end
        local need = tonumber(sizes[0])
        if need <= scratch_size then
            return nil, "framer size probe failed"
        end
        get_buf(need)
    end
end


-- Per worker: "PUB <subject> " for subjects the framer accepted (a pure
-- function of the subject: a cache, never request state), so that a
-- message to a known subject is framed in Lua. Bounded: emptied when full;
-- long subjects are not kept.
local prefixes = {}
local nprefixes = 0
local PREFIXES_MAX = 1024
local PREFIX_SUBJECT_MAX = 256


-- writes the decimal digits of 0 <= n < LEN_MAX and CRLF at buf[pos];
-- returns the position after them. Without a loop: an inner loop would
-- split the trace of a publish loop around it.
local LEN_MAX = 100000000
local function put_len_crlf(buf, pos, n)
    local p = pos
    if n >= 10000000 then
        buf[p] = 48 + floor(n / 10000000) % 10
        p = p + 1
    end
    if n >= 1000000 then
        buf[p] = 48 + floor(n / 1000000) % 10
        p = p + 1
    end
    if n >= 100000 then
        buf[p] = 48 + floor(n / 100000) % 10
        p = p + 1
    end
    if n >= 10000 then
        buf[p] = 48 + floor(n / 10000) % 10
        p = p + 1
    end
    if n >= 1000 then
        buf[p] = 48 + floor(n / 1000) % 10
        p = p + 1
    end
    if n >= 100 then
        buf[p] = 48 + floor(n / 100) % 10
        p = p + 1
    end
    if n >= 10 then
        buf[p] = 48 + floor(n / 10) % 10
        p = p + 1
    end
    buf[p] = 48 + n % 10
    buf[p + 1] = 13
    buf[p + 2] = 10
    return p + 3
end


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


-- the result of a framer writing at buf[pos]: the position after the
-- frame; nil, nil, size needed from pos (it did not fit); nil, err
local function framed(rc, pos)
    if rc == OK then
        return pos + tonumber(sizes[0])
    end
    if rc == AGAIN then
        return nil, nil, tonumber(sizes[0])
    end
    return nil, last_error()
end


local function frame_hpub(c, buf, pos, cap, subject, reply, headers, plen)
    local info = c._info
    if not info or not info.headers then
        return nil, "the server does not support headers"
    end
    local anchors = {}
    local arr, n = header_array(headers, anchors)
    if not arr then
        return nil, n
    end
    sizes[1] = ERRBUF_SIZE
    local rc = C.resty_nats_frame_hpub(buf + pos, cap - pos, sizes, subject,
                                       #subject, reply, reply and #reply or 0,
                                       arr, n, plen, c._max_payload, errbuf,
                                       errlen)
    anchors = nil
    return framed(rc, pos)
end


-- The one way to frame a message: the control part of a message of plen
-- bytes to subject (reply and headers optional), written at buf[pos] with
-- cap the buffer's size, for connection c (its max_payload, whether its
-- server takes headers). The caller writes the payload and CRLF after it.
-- Returns the position after it; nil, nil, need when it did not fit (need:
-- the room it takes from pos); nil, err when refused (nothing written
-- that counts).
local function frame_msg(c, buf, pos, cap, subject, reply, headers, plen)
    if headers ~= nil and next(headers) ~= nil then
        return frame_hpub(c, buf, pos, cap, subject, reply, headers, plen)
    end
    local max = c._max_payload
    local slen = #subject
    if reply == nil then
        local prefix = prefixes[subject]
        if prefix and plen <= max and plen < LEN_MAX
           and pos + slen + PUB_ROOM <= cap
        then
            -- a subject the framer accepted before
            local pl = #prefix
            ffi_copy(buf + pos, prefix, pl)
            return put_len_crlf(buf, pos + pl, plen)
        end
    end
    sizes[1] = ERRBUF_SIZE
    local rc = C.resty_nats_frame_pub(buf + pos, cap - pos, sizes, subject,
                                      slen, reply, reply and #reply or 0,
                                      plen, max, errbuf, errlen)
    if rc == OK and reply == nil and slen <= PREFIX_SUBJECT_MAX
       and not prefixes[subject]
    then
        if nprefixes >= PREFIXES_MAX then
            prefixes = {}
            nprefixes = 0
        end
        prefixes[subject] = "PUB " .. subject .. " "
        nprefixes = nprefixes + 1
    end
    return framed(rc, pos)
end
_M.frame_msg = frame_msg


-- the room a message's control part takes at most, when it has no headers
function _M.pub_room(subject, reply)
    return #subject + (reply and #reply or 0) + PUB_ROOM
end


-- A whole message (control part, payload, CRLF) in the scratch buffer when
-- it fits: the buffer and its length; else the control part as a string,
-- for a send of { line, payload, CRLF }. nil, err when refused.
function _M.message(c, subject, payload, reply, headers)
    local plen = #payload
    local buf, cap = scratch, scratch_size
    local pos, err, need = frame_msg(c, buf, 0, cap, subject, reply, headers,
                                     plen)
    if not pos then
        if err then
            return nil, err
        end
        buf, cap = get_buf(need + plen + 2)
        pos, err = frame_msg(c, buf, 0, cap, subject, reply, headers, plen)
        if not pos then
            return nil, err or "framer size probe failed"
        end
    end
    if pos + plen + 2 > cap then
        return ffi_string(buf, pos)
    end
    ffi_copy(buf + pos, payload, plen)
    pos = pos + plen
    buf[pos] = 13
    buf[pos + 1] = 10
    return buf, pos + 2
end


-- a payload argument as a string ("" for nil, numbers as text); anything
-- else raises, at the caller of the API function fname (level: 3 when the
-- API function calls this directly)
function _M.check_payload(payload, fname, level)
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
          .. t .. ")", level or 3)
end


-- len random characters of [A-Za-z0-9] (the kernel's CSPRNG), or nil
function _M.token(len)
    if C.resty_nats_random_token(scratch, len) ~= OK then
        return nil
    end
    return ffi_string(scratch, len)
end


-- the value of each character of a token (0-61)
local TOKEN_VALUE = {}
do
    local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    for i = 1, #chars do
        TOKEN_VALUE[chars:byte(i)] = i - 1
    end
end


-- a number in [0, 1) from the kernel's CSPRNG (math.random gives every
-- worker the same sequence unless the user seeds it: the workers of a
-- host would pick the same server of a cluster, and wait the same jitter)
function _M.random()
    if C.resty_nats_random_token(scratch, 8) ~= OK then
        return math.random()
    end
    local v = 0
    for i = 0, 7 do
        v = v * 62 + (TOKEN_VALUE[scratch[i]] or 0)
    end
    return v / 218340105584896     -- 62^8
end


return _M
