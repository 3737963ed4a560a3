-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.wire: the connection layer shared by per-request objects and
-- shared connections: the protocol state of a connection (parser,
-- subscription table, write buffer), frames out (control lines, messages,
-- the write buffer, PING), events in (reads bounded by a deadline, INFO,
-- PING/PONG, -ERR), and messages as Lua tables.
--
-- The functions take the connection's state table c (a per-request
-- object is its own state) with the fields set by init() and reset().

local ffi = require "ffi"
local core = require "resty.nats.core"
local settings = require "resty.nats.settings"
local servers = require "resty.nats.servers"

local C = core.C
local OK = core.OK
local AGAIN = core.AGAIN
local EV_PING = core.EV_PING
local EV_PONG = core.EV_PONG
local EV_INFO = core.EV_INFO
local EV_ERR = core.EV_ERR
local EV_MSG = core.EV_MSG
local EV_HMSG = core.EV_HMSG
local STATUS_INVALID_HEADERS = core.STATUS_INVALID_HEADERS
local read_timeout = settings.read_timeout
local now_ms = settings.now_ms
local learn = servers.learn

local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_copy = ffi.copy
local ffi_gc = ffi.gc
local ngx_log = ngx.log
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local type = type
local tostring = tostring
local tonumber = tonumber
local pairs = pairs
local ipairs = ipairs
local next = next
local error = error
local str_lower = string.lower
local str_find = string.find
local tab_sort = table.sort


local _M = {
    READ_SIZE = 65536,
    ERRBUF_SIZE = 256,
    FRAME_SIZE = 4096,
    DEFAULT_MAX_PAYLOAD = 1048576,
    PING = "PING\r\n",
    PONG = "PONG\r\n",
    CRLF = "\r\n",
}

local READ_SIZE = _M.READ_SIZE
local ERRBUF_SIZE = _M.ERRBUF_SIZE
local FRAME_SIZE = _M.FRAME_SIZE
local DEFAULT_MAX_PAYLOAD = _M.DEFAULT_MAX_PAYLOAD
local PING = _M.PING
local PONG = _M.PONG


-- Scratch space for control lines and tokens, shared by every object of
-- the worker, as lua-resty-core's get_string_buf: each use fills it and
-- copies it out into a Lua string with no yield in between, so it never
-- carries anything from one call (or request) to the next. One per object
-- was a 4 KiB allocation per connect for the garbage collector.
local scratch = ffi_new("char[?]", FRAME_SIZE)
local scratch_size = FRAME_SIZE


-- the buffers every connection state needs, whether connected or not
function _M.init(c)
    c._errbuf = ffi_new("char[?]", ERRBUF_SIZE)
    c._sizes = ffi_new("size_t[2]")  -- [0]: frame size, [1]: errlen
    c._errlen = c._sizes + 1
    c._ev = ffi_new("resty_nats_event_t")
    c._obuf = nil       -- the write buffer (char[_ocap]), see set_write_buffer
    c._ocap = 0
    c._olen = 0         -- bytes waiting in _obuf
    c._wmax = 0
end


-- a fresh parser (for a new connection); true, or nil, "no memory"
function _M.new_parser(c)
    local pp = ffi_new("resty_nats_parser_t *[1]")
    if C.resty_nats_parser_new(pp, 0) ~= OK then
        return nil, "no memory"
    end
    c._parser = ffi_gc(pp[0], C.resty_nats_parser_free)
    return true
end


-- fresh protocol state for a new connection: a parser, a subscription
-- table, the counters; true, or nil, "no memory"
function _M.reset(c)
    local ok, err = _M.new_parser(c)
    if not ok then
        return nil, err
    end

    local tp = ffi_new("resty_nats_subs_t *[1]")
    if C.resty_nats_subs_new(tp) ~= OK then
        return nil, "no memory"
    end
    c._subtab = ffi_gc(tp[0], C.resty_nats_subs_free)
    c._subs = {}
    c._nsubs = 0
    c._olen = 0
    c._pings = 0
    c._pongs = 0
    c._sent = 0         -- sends so far (see send_ping and settle)
    c._ping_sent = 0    -- ... when the last PING went out
    c._acked = 0        -- ... that the server confirmed with a PONG
    c._inbox_sid = nil
    c._inbox_prefix = nil
    c._tls = false
    return true
end


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
_M.err_is_fatal = err_is_fatal


local function last_error(self)
    return ffi_string(self._errbuf, self._sizes[1])
end
_M.last_error = last_error


local function reset_errlen(self)
    self._sizes[1] = ERRBUF_SIZE
end
_M.reset_errlen = reset_errlen


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
_M.frame_call = frame_call


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


-- closes the connection after a failure that leaves it unusable; the
-- owner's _on_fail(self, err) (a method, if it has one) cleans up its part
local function fail(self, err)
    local sock = self._sock
    if sock and self._connected then
        sock:close()
    end
    self._connected = false
    local on_fail = self._on_fail
    if on_fail then
        on_fail(self, err)
    end
    return false, err
end
_M.fail = fail


-- sends what publish() buffered, if anything
local function write_flush(self)
    local olen = self._olen
    if olen == 0 then
        return true
    end
    self._olen = 0
    self._sent = self._sent + 1
    local sock = self._sock
    local send_buf = sock.send_nats_buf
    local _, err
    if send_buf then
        -- the patched lua module sends the buffer's bytes as they are
        _, err = send_buf(sock, self._obuf, olen)
    else
        _, err = sock:send(ffi_string(self._obuf, olen))
    end
    if err then
        return fail(self, err)
    end
    return true
end
_M.write_flush = write_flush


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
_M.buffer_str = buffer_str


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
_M.send = send


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
            learn(key, list)
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
_M.apply_info = apply_info


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
_M.next_event = next_event


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
_M.build_msg = build_msg


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
_M.handle_control = handle_control


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
_M.message_frames = message_frames


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
_M.send_ping = send_ping


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
_M.settle = settle


return _M
