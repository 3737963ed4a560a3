-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared: one long-lived NATS connection per worker and name,
-- shared by every request of the worker (nats.shared(name, opts)).
--
-- A cosocket belongs to the request or timer that made it, so the
-- connection lives in a timer of its own: its main thread connects (the
-- same handshake, auth and TLS as per-request objects), resubscribes, and
-- runs two light threads, a reader (events in, messages dispatched) and a
-- writer (everything queued since its last write in one send), until the
-- connection is lost (then it reconnects with backoff) or closed. Requests
-- never touch the socket: publish() frames into the connection's queue and
-- wakes the writer, request() and sub:next() wait on semaphores that the
-- reader posts. Subscriptions with a callback get a timer each that runs
-- the callback for their messages in order; subscriptions without one
-- belong to the request that made it and are removed when it ends (the
-- nginx module records the end of a request, a janitor timer sweeps).

local ffi = require "ffi"
local core = require "resty.nats.core"
local settings = require "resty.nats.settings"
local servers = require "resty.nats.servers"
local wire = require "resty.nats.wire"
local hs = require "resty.nats.handshake"
local subs_mod = require "resty.nats.subs"
local semaphore = require "ngx.semaphore"

local C = core.C
local OK = core.OK
local DONE = core.DONE
local EV_MSG = core.EV_MSG
local EV_HMSG = core.EV_HMSG
local EV_PING = core.EV_PING
local EV_PONG = core.EV_PONG
local EV_INFO = core.EV_INFO
local EV_ERR = core.EV_ERR
local get_request = core.get_request
local on_request_end = core.on_request_end
local ended = core.ended

local location_timeouts = settings.location_timeouts
local read_timeout = settings.read_timeout
local now_ms = settings.now_ms
local request_timeout = settings.request_timeout

local server_list = servers.server_list
local mark_up = servers.mark_up
local mark_down = servers.mark_down

local wire_init = wire.init
local new_parser = wire.new_parser
local wire_token = wire.token
local check_payload = wire.check_payload
local last_error = wire.last_error
local frame_call = wire.frame_call
local apply_info = wire.apply_info
local next_event = wire.next_event
local build_msg = wire.build_msg
local message_frames = wire.message_frames
local err_is_fatal = wire.err_is_fatal
local ERRBUF_SIZE = wire.ERRBUF_SIZE
local DEFAULT_MAX_PAYLOAD = wire.DEFAULT_MAX_PAYLOAD
local PING = wire.PING
local PONG = wire.PONG
local CRLF = wire.CRLF

local handshake = hs.handshake

local add_sub = subs_mod.add
local drop_sub = subs_mod.drop
local inbox_frames = subs_mod.inbox_frames
local REPLY_TOKEN_LEN = subs_mod.REPLY_TOKEN_LEN

local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_copy = ffi.copy
local new_sema = semaphore.new
local tcp = ngx.socket.tcp
local timer_at = ngx.timer.at
local timer_every = ngx.timer.every
local spawn = ngx.thread.spawn
local kill = ngx.thread.kill
local get_phase = ngx.get_phase
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_NOTICE = ngx.NOTICE
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
local tab_concat = table.concat
local math_random = math.random


local _M = {}

local Conn = {}
local conn_mt = { __index = Conn }
local Sub = {}
local sub_mt = { __index = Sub }

-- The worker's shared connections by name: per-worker state, explicit and
-- named (nats.shared), never request state.
local registry = {}

-- Request-scoped subscriptions of every shared connection by id, until
-- their request ends (see sweep).
local scoped = {}
local last_scoped_id = 0
local sweeping = false

local DEFAULT_RECONNECT_WAIT = 2000     -- ms
local RECONNECT_JITTER = 100            -- ms at most, added at random
local DEFAULT_BUFFER_SIZE = 8 * 1024 * 1024
local DEFAULT_PENDING_MSGS = 65536
local DEFAULT_PENDING_BYTES = 64 * 1024 * 1024
local DEFAULT_PING_INTERVAL = 120000    -- ms, as the official clients
local DEFAULT_MAX_PINGS_OUT = 2
local QUEUE_MIN = 65536                 -- bytes the queue starts with
-- a caller that has queued this much for an idle writer lets it write
-- (yields once) where it can yield: a long burst then goes out in chunks
-- while the rest is framed, instead of all at once after the handler
local YIELD_BYTES = 262144
-- payloads of this size and more are not copied into the queue: the
-- writer sends them by reference among the queued bytes (a cosocket sends
-- a list of strings with no copy of its own, but each element costs about
-- as much as copying 1 KiB twice into a Lua string would). With the
-- patched lua module (sock:send_nats_buf sends the queue's memory as it
-- is) only payloads too large to be worth one more copy go by reference.
local SEG_MIN = 512
local SEG_MIN_SEND_BUF = 32768
-- "PUB <subject> " of the subjects the framer accepted, kept per
-- connection (up to this many, then started afresh) so that a publish
-- to a known subject is framed in Lua; longer subjects are not kept
local PREFIXES_MAX = 256
local PREFIX_SUBJECT_MAX = 256
local IDLE_WAIT = 30                    -- s a waiting thread sleeps at most
local SWEEP_INTERVAL = 0.2              -- s between sweeps of ended requests
local EXIT_TIMER = 100000000            -- s: fires only at worker exit

-- where semaphores can be waited on (a request may yield)
local YIELDABLE = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
    preread = true,
}


local function can_yield()
    return YIELDABLE[get_phase()] == true
end


local function log_prefix(c)
    return "nats: shared connection '" .. c._name .. "': "
end


---------------------------------------------------------------------------
-- the queue: what requests publish, framed, until the writer takes it

-- makes room for n more bytes in the buffer (and extra more held by
-- reference); false when that would pass buffer_size
local function q_room(c, n, extra)
    local len = c._qlen
    local need = len + n
    if need + c._segbytes + (extra or 0) > c._qmax then
        return false
    end
    local cap = c._qcap
    if need <= cap then
        return true
    end
    repeat
        cap = cap * 2
    until cap >= need
    if cap > c._qmax then
        cap = c._qmax
    end
    local buf = ffi_new("char[?]", cap)
    ffi_copy(buf, c._qbuf, len)
    c._qbuf = buf
    c._qcap = cap
    return true
end


local function q_str(c, s)
    local len = c._qlen
    ffi_copy(c._qbuf + len, s, #s)
    c._qlen = len + #s
end


local function wake_writer(c)
    if c._wsleep then
        c._wsleep = false
        c._wsema:post(1)
    end
end


-- a string sent in its place among the queued bytes (at the current end
-- of the buffer), without copying it into the buffer: a control frame
-- (keep false: dropped if the connection is lost first, as subscriptions
-- are made again at the next connect) or a large payload (keep true)
local function insert(c, s, keep)
    local n = c._nctl + 1
    c._nctl = n
    c._ctl[n] = s
    c._ctl_at[n] = c._qlen
    c._ctl_keep[n] = keep
end


-- a control frame (SUB, UNSUB, PING, PONG) for this connection only
local function ctl(c, frame)
    insert(c, frame, false)
    wake_writer(c)
end


-- a PING whose PONG wakes waiter (false: none); PONGs come in order
local function ping(c, waiter)
    local t = c._pqt + 1
    c._pqt = t
    c._pq[t] = waiter
    ctl(c, PING)
end


local function pong(c)
    c._pings_out = 0
    local h = c._pqh
    if h > c._pqt then
        return
    end
    local w = c._pq[h]
    c._pq[h] = nil
    if h == c._pqt then
        c._pqh, c._pqt = 1, 0
    else
        c._pqh = h + 1
    end
    if w then
        w.done = true
        w.sema:post(1)
    end
end


-- waits, where the caller can yield and the connection is up, until the
-- writer has taken the queue and there is room for n bytes
local function wait_room(c, n, extra)
    if c._state ~= "connected" or not can_yield() then
        return false
    end
    local _, st = location_timeouts()
    local deadline = now_ms() + st
    while true do
        local left = deadline - now_ms()
        if left <= 0 then
            return false
        end
        c._nroom = c._nroom + 1
        c._roomsema:wait(left / 1000)
        if q_room(c, n, extra) then
            return true
        end
        if c._state ~= "connected" then
            return false
        end
    end
end


local function wake_room_waiters(c)
    local n = c._nroom
    if n > 0 then
        c._nroom = 0
        c._roomsema:post(n)
    end
end


-- writes the decimal digits of n >= 0 and CRLF at buf[pos]; returns the
-- position after them
local function put_len_crlf(buf, pos, n)
    local digits, t = 1, n
    while t >= 10 do
        t = (t - t % 10) / 10
        digits = digits + 1
    end
    local p = pos + digits - 1
    repeat
        local d = n % 10
        buf[p] = 48 + d
        n = (n - d) / 10
        p = p - 1
    until n == 0
    p = pos + digits
    buf[p] = 13
    buf[p + 1] = 10
    return p + 2
end


-- one message into the queue; true, or nil, err (nothing queued)
local function enqueue_msg(c, subject, payload, reply, headers)
    local plen = #payload
    if headers ~= nil and next(headers) ~= nil then
        local line, err = message_frames(c, subject, payload, reply, headers)
        if not line then
            return nil, err
        end
        local n = #line + plen + 2
        if not q_room(c, n) and not wait_room(c, n) then
            return nil, "buffer full"
        end
        q_str(c, line)
        q_str(c, payload)
        q_str(c, CRLF)

    else
        -- framed in place: room for the longest PUB line these take; a
        -- large payload is not copied but sent by reference
        local rlen = reply and #reply or 0
        local big = plen >= c._seg_min
        local n = #subject + rlen + 40
        local extra = 0
        if big then
            extra = plen
        else
            n = n + plen
        end
        if not q_room(c, n, extra) and not wait_room(c, n, extra) then
            return nil, "buffer full"
        end
        local len = c._qlen
        local buf = c._qbuf
        local prefix = reply == nil and c._prefixes[subject]
        if prefix and plen <= c._max_payload then
            -- a subject the framer accepted before
            local pl = #prefix
            ffi_copy(buf + len, prefix, pl)
            len = put_len_crlf(buf, len + pl, plen)
        else
            local sizes = c._sizes
            sizes[1] = ERRBUF_SIZE
            local rc = C.resty_nats_frame_pub(buf + len, c._qcap - len,
                                              sizes, subject, #subject,
                                              reply, rlen, plen,
                                              c._max_payload, c._errbuf,
                                              c._errlen)
            if rc ~= OK then
                return nil, last_error(c)
            end
            len = len + tonumber(sizes[0])
            if reply == nil and #subject <= PREFIX_SUBJECT_MAX then
                local np = c._nprefixes
                if np >= PREFIXES_MAX then
                    c._prefixes = {}
                    np = 0
                end
                c._prefixes[subject] = "PUB " .. subject .. " "
                c._nprefixes = np + 1
            end
        end
        if big then
            c._qlen = len
            insert(c, payload, true)
            c._segbytes = c._segbytes + plen
        else
            ffi_copy(buf + len, payload, plen)
            len = len + plen
        end
        buf[len] = 13
        buf[len + 1] = 10
        c._qlen = len + 2
    end

    c._out_msgs = c._out_msgs + 1
    c._out_bytes = c._out_bytes + plen
    wake_writer(c)
    if c._qlen + c._segbytes >= YIELD_BYTES and not c._wbusy
       and c._state == "connected" and can_yield()
    then
        -- back as soon as the writer has taken the queue (a semaphore
        -- post is seen in the same turn of the event loop)
        c._nroom = c._nroom + 1
        c._roomsema:wait(0.01)
    end
    return true
end


---------------------------------------------------------------------------
-- waiters: a semaphore and a result, reused by the requests of a connection

local function take_waiter(c)
    local n = c._nwfree
    if n > 0 then
        local w = c._wfree[n]
        c._wfree[n] = nil
        c._nwfree = n - 1
        return w
    end
    return { sema = new_sema(), msg = nil, err = nil, done = false }
end


local function give_waiter(c, w)
    w.msg = nil
    w.err = nil
    w.done = false
    if w.sema:count() == 0 and c._nwfree < 64 then
        local n = c._nwfree + 1
        c._nwfree = n
        c._wfree[n] = w
    end
end


-- Until the first connect attempt is over, a caller that can wait does
-- (a request arriving as the worker starts); afterwards an outage fails
-- calls at once. true when connected.
local function wait_first(c, ms)
    if c._state == "connected" then
        return true
    end
    if not c._first or not can_yield() then
        return false
    end
    c._nup = c._nup + 1
    c._up_sema:wait(ms / 1000)
    return c._state == "connected"
end


local function first_over(c)
    c._first = false
    local n = c._nup
    if n > 0 then
        c._nup = 0
        c._up_sema:post(n)
    end
end


-- wakes everything that waits on this connection: requests and flushes
-- in flight get err, writers waiting for room look again
local function fail_inflight(c, err)
    local resp = c._resp
    for token, w in pairs(resp) do
        resp[token] = nil
        w.err = err
        w.sema:post(1)
    end
    local pq = c._pq
    for i = c._pqh, c._pqt do
        local w = pq[i]
        pq[i] = nil
        if w then
            w.err = err
            w.sema:post(1)
        end
    end
    c._pqh, c._pqt = 1, 0
    -- control frames go, payloads held by reference stay
    local frames, at, keep = c._ctl, c._ctl_at, c._ctl_keep
    local k = 0
    for i = 1, c._nctl do
        if keep[i] then
            k = k + 1
            frames[k], at[k], keep[k] = frames[i], at[i], true
        end
    end
    for i = k + 1, c._nctl do
        frames[i], at[i], keep[i] = nil, nil, nil
    end
    c._nctl = k
    wake_room_waiters(c)
end


---------------------------------------------------------------------------
-- subscriptions' message queues

local function push(sub, msg, len)
    local t = sub._qt + 1
    sub._qt = t
    sub._q[t] = msg
    sub._pmsgs = sub._pmsgs + 1
    sub._pbytes = sub._pbytes + len
end


local function pop(sub)
    local h = sub._qh
    if h > sub._qt then
        return nil
    end
    local msg = sub._q[h]
    sub._q[h] = nil
    if h == sub._qt then
        sub._qh, sub._qt = 1, 0
    else
        sub._qh = h + 1
    end
    sub._pmsgs = sub._pmsgs - 1
    sub._pbytes = sub._pbytes - #msg.payload
    return msg
end


local function wake_sub(sub)
    if sub._waiting then
        sub._waiting = false
        sub._sema:post(1)
    end
end


---------------------------------------------------------------------------
-- the reader

-- a reply on the muxed inbox, for the request waiting on its token
local function deliver_reply(c, ev)
    local plen = c._inbox_plen
    local slen = ev.subject.len
    if slen <= plen then
        return
    end
    local token = ffi_string(ev.subject.data + plen, slen - plen)
    local w = c._resp[token]
    if not w then
        -- a late reply (its request timed out) or a second responder
        return
    end
    c._resp[token] = nil
    local msg = build_msg(ev, nil)
    if msg.status == 503 and msg.payload == "" then
        w.err = "no responders"
    else
        w.msg = msg
    end
    w.sema:post(1)
end


local function dispatch(c, ev)
    local len = tonumber(ev.payload.len)
    c._in_msgs = c._in_msgs + 1
    c._in_bytes = c._in_bytes + len

    local nsid = tonumber(ev.sid)
    if nsid == c._inbox_sid then
        return deliver_reply(c, ev)
    end

    local sub = c._subs[nsid]
    if not sub then
        return      -- a subscription that ended: dropped
    end

    local rc = C.resty_nats_subs_deliver(c._subtab, ev.sid)
    if rc ~= OK and rc ~= DONE then
        return
    end
    sub._delivered = sub._delivered + 1
    if rc == DONE then
        -- its max reached: no more messages, and none to resubscribe
        c._subs[nsid] = nil
        c._nsubs = c._nsubs - 1
        sub._done = true
    end

    if sub._pmsgs >= sub._lim_msgs or sub._pbytes + len > sub._lim_bytes then
        c._dropped = c._dropped + 1
        sub.dropped = sub.dropped + 1
        if sub.dropped == 1 then
            ngx_log(ngx_WARN, log_prefix(c), "slow consumer on ",
                    sub.subject, ": pending limits reached (",
                    sub._lim_msgs, " messages, ", sub._lim_bytes,
                    " bytes), dropping messages")
        end
    else
        push(sub, build_msg(ev, sub.sid), len)
    end
    wake_sub(sub)
end


-- the connection failed: the main thread reconnects
local function lost(c, err)
    if not c._lost then
        c._lost = err
        c._main_sema:post(1)
    end
end


local function reader(c)
    while true do
        local ev, err = next_event(c, nil)
        if not ev then
            if err ~= "timeout" then
                return lost(c, err)
            end
            -- nothing for a ping interval: is the server still there?
            if c._pings_out >= c._max_pings_out then
                return lost(c, "stale connection")
            end
            c._pings_out = c._pings_out + 1
            ping(c, false)

        else
            local t = ev.type
            if t == EV_MSG or t == EV_HMSG then
                dispatch(c, ev)

            elseif t == EV_PING then
                ctl(c, PONG)

            elseif t == EV_PONG then
                pong(c)

            elseif t == EV_INFO then
                local ok
                ok, err = apply_info(c, ev)
                if not ok then
                    return lost(c, err)
                end

            elseif t == EV_ERR then
                local text = ffi_string(ev.payload.data, ev.payload.len)
                if err_is_fatal(text) then
                    ngx_log(ngx_ERR, log_prefix(c), "server error: ", text)
                    return lost(c, text)
                end
                ngx_log(ngx_WARN, log_prefix(c), "server error: ", text)
            end
        end
    end
end


---------------------------------------------------------------------------
-- the writer: whatever was queued since its last send, in one send

local function writer(c)
    local sock = c._sock
    while not c._lost do
        local len, nctl = c._qlen, c._nctl
        if len == 0 and nctl == 0 then
            c._wsleep = true
            c._wsema:wait(IDLE_WAIT)
            c._wsleep = false

        else
            local buf = c._qbuf
            local data
            local send_buf = nctl == 0 and sock.send_nats_buf
            if send_buf then
                -- the patched lua module copies the bytes at the call,
                -- before it may yield: the queue is free again at once
                data = buf
            elseif nctl == 0 then
                data = ffi_string(buf, len)
            else
                -- control frames and large payloads in their places
                data = {}
                local frames, at, keep = c._ctl, c._ctl_at, c._ctl_keep
                local pos, k = 0, 0
                for i = 1, nctl do
                    local off = at[i]
                    if off > pos then
                        k = k + 1
                        data[k] = ffi_string(buf + pos, off - pos)
                        pos = off
                    end
                    k = k + 1
                    data[k] = frames[i]
                    frames[i] = nil
                    at[i] = nil
                    keep[i] = nil
                end
                if len > pos then
                    k = k + 1
                    data[k] = ffi_string(buf + pos, len - pos)
                end
                c._nctl = 0
                c._segbytes = 0
            end
            c._qlen = 0
            if c._qcap > QUEUE_MIN * 16 and len < c._qcap / 8 then
                -- after a burst: give the memory back
                c._qbuf = ffi_new("char[?]", QUEUE_MIN)
                c._qcap = QUEUE_MIN
            end
            wake_room_waiters(c)

            c._wbusy = true
            local _, err
            if send_buf then
                _, err = send_buf(sock, data, len)
            else
                _, err = sock:send(data)
            end
            c._wbusy = false
            if err then
                return lost(c, err)
            end
        end
    end
end


---------------------------------------------------------------------------
-- connecting

-- the frames that make every live subscription again on a new connection
-- (with what remains of its max)
local function resub_frames(c)
    local frames = {}
    for nsid, sub in pairs(c._subs) do
        local subject, queue = sub.subject, sub.queue
        local line, err = frame_call(c, C.resty_nats_frame_sub, subject,
                                     #subject, queue, queue and #queue or 0,
                                     nsid, c._errbuf, c._errlen)
        if not line then
            return nil, err
        end
        frames[#frames + 1] = line
        local max = sub._max
        if max and max > 0 then
            line, err = frame_call(c, C.resty_nats_frame_unsub, nsid,
                                   max - sub._delivered, c._errbuf,
                                   c._errlen)
            if not line then
                return nil, err
            end
            frames[#frames + 1] = line
        end
    end
    return frames
end


local function timeouts(c)
    local o = c._opts
    local ct, st, rt = location_timeouts()
    return o.connect_timeout or ct, o.send_timeout or st,
           o.read_timeout or rt
end


-- one round over the server list; true once connected and subscribed
local function connect_once(c)
    local opts = c._opts
    local list, key = server_list(opts, opts.host or "127.0.0.1", opts.port)
    if not list then
        return nil, key
    end
    c._cluster_key = key

    local errs = {}
    local err
    for _, srv in ipairs(list) do
        if c._closing or c._exiting then
            return nil, "closed"
        end

        local sock
        sock, err = tcp()
        if not sock then
            return nil, err
        end
        local ct, st, rt = timeouts(c)
        sock:settimeouts(ct, st, rt)
        c._timeouts = { ct, st, rt }

        local ok
        if srv.unix then
            ok, err = sock:connect(srv.host)
        else
            ok, err = sock:connect(srv.host, srv.port)
        end
        if ok then
            c._sock = sock
            c._seg_min = sock.send_nats_buf and SEG_MIN_SEND_BUF or SEG_MIN
            c._connected = true
            ok, err = new_parser(c)
            if ok then
                ok, err = handshake(c, srv, opts)
            end
            local frames
            if ok and not c._inbox_sid then
                -- the request inbox, once for the connection's life
                frames, err = inbox_frames(c)
                ok = frames ~= nil
                if ok then
                    c._inbox_plen = #c._inbox_prefix
                end
            end
            if ok then
                frames, err = resub_frames(c)
                ok = frames ~= nil
            end
            if ok then
                -- from here on, new subscriptions go through the writer
                c._state = "connected"
                c._server = srv
                if #frames > 0 then
                    local _
                    _, err = sock:send(frames)
                    ok = err == nil
                end
            end
            if ok then
                mark_up(srv.key)
                sock:settimeouts(ct, st, c._ping_interval)
                return true
            end
            c._state = "reconnecting"
            c._connected = false
            sock:close()
            fail_inflight(c, "disconnected")
        end

        mark_down(srv.key)
        err = tostring(err)
        errs[#errs + 1] = srv.key .. ": " .. err
        if err == "authorization violation"
           or str_find(str_lower(err), "authentication", 1, true)
        then
            return nil, err
        end
    end

    if #list == 1 then
        return nil, err
    end
    return nil, "no server available (" .. tab_concat(errs, "; ") .. ")"
end


-- close or worker exit over a live connection: every subscription ends at
-- the server, what was queued goes out, and a PING/PONG confirms it
local function drain(c)
    for nsid in pairs(c._subs) do
        local line = frame_call(c, C.resty_nats_frame_unsub, nsid, 0,
                                c._errbuf, c._errlen)
        if line then
            ctl(c, line)
        end
    end
    local w = { sema = new_sema() }
    ping(c, w)
    local rt = read_timeout(c)
    w.sema:wait(rt / 1000)
    if not w.done then
        return nil, w.err or "timeout"
    end
    return true
end


-- one connected period: until the connection is lost or closed
local function run_connected(c)
    c._lost = nil
    c._pings_out = 0
    if c._ever then
        c._reconnects = c._reconnects + 1
        ngx_log(ngx_NOTICE, log_prefix(c), "reconnected to ",
                c._server.key)
    end
    c._ever = true

    local rt = spawn(reader, c)
    local wt = spawn(writer, c)

    while not c._lost and not c._closing and not c._exiting do
        c._main_sema:wait(IDLE_WAIT)
        -- requests whose handler was aborted while waiting (the client
        -- went away) never remove their entry: drop the expired ones
        local now = now_ms()
        for token, waiter in pairs(c._resp) do
            if waiter.expires < now then
                c._resp[token] = nil
            end
        end
    end

    local ok, err = true, nil
    if not c._lost then
        ok, err = drain(c)
    end
    local why = c._lost
    c._lost = c._lost or "closed"
    kill(rt)
    kill(wt)
    c._sock:close()
    c._connected = false
    c._state = "reconnecting"
    fail_inflight(c, "disconnected")
    if why then
        ngx_log(ngx_WARN, log_prefix(c), "connection to ", c._server.key,
                " lost: ", why)
    end
    return ok, err
end


-- after close or at worker exit: nothing waits any more
local function finish(c, ok, err)
    if ok then
        ngx_log(ngx_NOTICE, log_prefix(c), "closed")
    else
        ngx_log(ngx_WARN, log_prefix(c), "closed: ", err)
    end
    c._state = "closed"
    c._connected = false
    if registry[c._name] == c then
        registry[c._name] = nil
    end
    fail_inflight(c, "closed")
    for nsid, sub in pairs(c._subs) do
        if nsid ~= c._inbox_sid then
            sub._closed = true
            wake_sub(sub)
        end
    end
    c._subs = {}
    c._nsubs = 0
    c._close_ok, c._close_err = ok, err
    c._closed_sema:post(64)
    first_over(c)
end


local function main(premature, c)
    if premature then
        return finish(c, nil, "worker exiting")
    end

    local ok, err
    local failures = 0
    while not c._closing and not c._exiting do
        ok, err = connect_once(c)
        if c._first then
            first_over(c)
        end
        if ok then
            failures = 0
            ok, err = run_connected(c)
            if c._closing or c._exiting then
                break
            end
            -- lost: the first attempt at once, then every reconnect_wait
            ok = true
        else
            failures = failures + 1
            ngx_log(failures == 1 and ngx_WARN or ngx_NOTICE, log_prefix(c),
                    "connect failed (attempt ", failures, "): ", err)
            if c._max_reconnects and failures > c._max_reconnects then
                ngx_log(ngx_ERR, log_prefix(c), "giving up after ",
                        failures, " attempts")
                break
            end
        end

        if not ok and not c._closing and not c._exiting then
            local wait = c._reconnect_wait + math_random() * RECONNECT_JITTER
            c._main_sema:wait(wait / 1000)
        end
    end

    local pending = c._qlen + c._segbytes
    if not ok and c._closing and pending > 0 then
        err = "not connected: " .. pending .. " bytes not sent"
    end
    finish(c, ok, err)
end


local function wake_for_exit(_, c)
    c._main_sema:post(1)
    wake_writer(c)
end


-- worker exit (reload, quit): a pending timer fires early, "premature".
-- It runs outside nginx's event loop, where a semaphore post would wait
-- for the loop's next timer to be seen: the wake-up goes through a timer
-- of 0 ms, which nginx still allows then.
local function on_exit(premature, c)
    if not premature or c._state == "closed" then
        return
    end
    ngx_log(ngx_NOTICE, log_prefix(c), "worker exiting: draining")
    c._exiting = true
    if not timer_at(0, wake_for_exit, c) then
        wake_for_exit(nil, c)
    end
end


---------------------------------------------------------------------------
-- request-scoped subscriptions: removed when their request ends

local ended_ids = ffi_new("uint64_t[64]")

local function sweep(premature)
    while true do
        local n = ended(ended_ids, 64)
        for i = 0, n - 1 do
            local id = tonumber(ended_ids[i])
            local sub = scoped[id]
            if sub then
                scoped[id] = nil
                sub:unsubscribe()
            end
        end
        if n < 64 then
            break
        end
    end
    if premature then
        sweeping = false
    end
end


---------------------------------------------------------------------------
-- the API

local function unusable(c)
    if c._state == "closed" or c._closing then
        return "closed"
    end
end


-- the caller's wait when it gives none (as request() of per-request
-- objects, from the caller's lua_socket_read_timeout)
local function default_timeout()
    local _, _, rt = location_timeouts()
    return request_timeout(rt)
end


-- the arguments common to publish and request: nil when they can go on
-- (payload as a string, the options table or nil), or an error string;
-- programmer errors raise at the caller of fname
local function message_args(c, subject, payload, opts, fname)
    local bad = unusable(c)
    if bad then
        return bad
    end
    if type(subject) ~= "string" then
        return "subject is not a string"
    end
    payload = check_payload(payload, fname, 4)
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to '" .. fname .. "' (table expected, got "
                  .. type(opts) .. ")", 3)
        end
        local headers = opts.headers
        if headers ~= nil and type(headers) ~= "table" then
            error("bad argument #3 to '" .. fname .. "' (headers must be a "
                  .. "table)", 3)
        end
    end
    return nil, payload
end


-- publish(subject, payload [, { reply_to = ..., headers = { ... } }])
function Conn.publish(c, subject, payload, opts)
    local bad
    bad, payload = message_args(c, subject, payload, opts, "publish")
    if bad then
        return nil, bad
    end
    local reply, headers
    if opts then
        reply, headers = opts.reply_to, opts.headers
        if reply ~= nil and type(reply) ~= "string" then
            return nil, "reply_to is not a string"
        end
    end
    return enqueue_msg(c, subject, payload, reply, headers)
end


-- request(subject, payload [, { timeout = ms, headers = { ... } }])
function Conn.request(c, subject, payload, opts)
    local bad
    bad, payload = message_args(c, subject, payload, opts, "request")
    if bad then
        return nil, bad
    end
    local timeout, headers
    if opts then
        timeout, headers = opts.timeout, opts.headers
        if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0)
        then
            error("bad timeout for 'request' (a positive number of ms "
                  .. "expected)", 2)
        end
    end

    if not can_yield() then
        return nil, "cannot wait in the " .. get_phase() .. " phase"
    end
    timeout = timeout or default_timeout()
    if not wait_first(c, timeout) then
        -- no waiting out an outage: the caller decides what to do
        return nil, "disconnected"
    end

    local token = wire_token(REPLY_TOKEN_LEN)
    if not token then
        return nil, "no randomness for the reply token"
    end

    -- in place before the PUB is queued: queueing may yield, and the
    -- reply may come before it returns
    local w = take_waiter(c)
    w.expires = now_ms() + timeout
    c._resp[token] = w
    local ok, err = enqueue_msg(c, subject, payload,
                                c._inbox_prefix .. token, headers)
    if not ok then
        c._resp[token] = nil
        give_waiter(c, w)
        return nil, err
    end

    w.sema:wait(timeout / 1000)
    c._resp[token] = nil

    local msg
    msg, err = w.msg, w.err
    give_waiter(c, w)
    if msg then
        return msg
    end
    return nil, err or "timeout"
end


-- subscribe(subject, callback [, { queue =, max = }]): for the worker's
-- life; subscribe(subject, nil [, opts]): for the calling request's
function Conn.subscribe(c, subject, callback, opts)
    local bad = unusable(c)
    if bad then
        return nil, bad
    end
    if type(subject) ~= "string" then
        return nil, "subject is not a string"
    end
    if callback ~= nil and type(callback) ~= "function" then
        return nil, "callback is not a function"
    end

    local queue, max
    if opts ~= nil then
        if type(opts) ~= "table" then
            error("bad argument #3 to 'subscribe' (table expected, got "
                  .. type(opts) .. ")", 2)
        end
        queue, max = opts.queue, opts.max
        if queue ~= nil and type(queue) ~= "string" then
            return nil, "queue is not a string"
        end
        if max ~= nil and (type(max) ~= "number" or max < 0
                           or max % 1 ~= 0)
        then
            return nil, "max is not a non-negative integer"
        end
    end

    local r, id
    if not callback then
        r = get_request and get_request()
        if not r or not on_request_end then
            return nil, "no request to scope the subscription to"
        end
        last_scoped_id = last_scoped_id + 1
        id = last_scoped_id
        if on_request_end(r, id) ~= OK then
            return nil, "no memory"
        end
    end

    local nsid, frames = add_sub(c, subject, callback or false, queue, max)
    if not nsid then
        return nil, frames
    end

    local sub = c._subs[nsid]
    sub._conn = c
    sub._nsid = nsid
    sub._max = max
    sub._delivered = 0
    sub._q = {}
    sub._qh = 1
    sub._qt = 0
    sub._pmsgs = 0
    sub._pbytes = 0
    sub._lim_msgs = c._lim_msgs
    sub._lim_bytes = c._lim_bytes
    sub._sema = new_sema()
    sub._waiting = false
    sub._closed = false
    sub._done = false
    sub.dropped = 0
    setmetatable(sub, sub_mt)

    if callback then
        local ok, err = timer_at(0, _M._run_callbacks, sub)
        if not ok then
            drop_sub(c, nsid)
            return nil, "cannot start the subscription's timer: " .. err
        end
    else
        sub._scoped_id = id
        scoped[id] = sub
        if not sweeping then
            local ok, err = timer_every(SWEEP_INTERVAL, sweep)
            if not ok then
                scoped[id] = nil
                drop_sub(c, nsid)
                return nil, "cannot start the sweeper: " .. err
            end
            sweeping = true
        end
    end

    if c._state == "connected" then
        for i = 1, #frames do
            ctl(c, frames[i])
        end
    end
    -- (not connected: made at the next connect, with every live one)
    return sub
end


-- the callbacks of one subscription, in order, in a timer of its own
function _M._run_callbacks(premature, sub)
    local cb = sub.callback
    local c = sub._conn
    while not sub._closed do
        local msg = pop(sub)
        if msg then
            local ok, err = pcall(cb, msg)
            if not ok then
                ngx_log(ngx_ERR, log_prefix(c), "callback for ",
                        sub.subject, " failed: ", err)
            end
        elseif sub._done or premature then
            return
        else
            sub._waiting = true
            sub._sema:wait(IDLE_WAIT)
            sub._waiting = false
        end
    end
end


-- sub:next([timeout]): the next message of a subscription without a
-- callback; nil, "timeout" or nil, "closed"
function Sub.next(sub, timeout)
    if sub.callback then
        error("next() on a subscription with a callback", 2)
    end
    local msg = pop(sub)
    if msg then
        return msg
    end
    if sub._closed or sub._done then
        return nil, "closed"
    end
    if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
        error("bad timeout for 'next' (a number of ms >= 0 expected)", 2)
    end
    if timeout == 0 then
        return nil, "timeout"
    end
    if not can_yield() then
        return nil, "cannot wait in the " .. get_phase() .. " phase"
    end

    local deadline = now_ms() + (timeout or default_timeout())
    while true do
        local left = deadline - now_ms()
        if left <= 0 then
            return nil, "timeout"
        end
        sub._waiting = true
        sub._sema:wait(left / 1000)
        sub._waiting = false
        msg = pop(sub)
        if msg then
            return msg
        end
        if sub._closed or sub._done then
            return nil, "closed"
        end
    end
end


function Sub.unsubscribe(sub)
    if sub._closed then
        return nil, "closed"
    end
    sub._closed = true
    local c = sub._conn
    local nsid = sub._nsid
    if c._subs[nsid] == sub then
        drop_sub(c, nsid)
        if c._state == "connected" then
            local line = frame_call(c, C.resty_nats_frame_unsub, nsid, 0,
                                    c._errbuf, c._errlen)
            if line then
                ctl(c, line)
            end
        end
    end
    local id = sub._scoped_id
    if id then
        scoped[id] = nil
    end
    wake_sub(sub)
    return true
end


-- flush([timeout]): everything queued before has reached the server
function Conn.flush(c, timeout)
    local bad = unusable(c)
    if bad then
        return nil, bad
    end
    if not can_yield() then
        return nil, "cannot wait in the " .. get_phase() .. " phase"
    end
    if timeout ~= nil and (type(timeout) ~= "number" or timeout <= 0) then
        error("bad timeout for 'flush' (a positive number of ms expected)",
              2)
    end
    if not timeout then
        local _, _, rt = location_timeouts()
        timeout = rt
    end
    if not wait_first(c, timeout) then
        return nil, "disconnected"
    end

    local w = { sema = new_sema(), done = false }
    ping(c, w)
    w.sema:wait(timeout / 1000)
    if w.done then
        return true
    end
    return nil, w.err or "timeout"
end


function Conn.stats(c)
    local srv = c._server
    return {
        state = c._state,
        server = srv and srv.key or nil,
        in_msgs = c._in_msgs,
        out_msgs = c._out_msgs,
        in_bytes = c._in_bytes,
        out_bytes = c._out_bytes,
        reconnects = c._reconnects,
        subscriptions = c._nsubs,
        pending_bytes = c._qlen + c._segbytes,
        dropped = c._dropped,
    }
end


-- jetstream([opts]): JetStream over this connection (resty.nats.jetstream)
function Conn.jetstream(c, opts)
    return require("resty.nats.jetstream").new(c, opts, true)
end


-- the server's INFO of the current (or last) connection, or nil
function Conn.server_info(c)
    local si = c._info
    if si and not si.assumed then
        return si
    end
    return nil
end


-- close(): drains (what was queued goes out, every subscription ends at
-- the server, a PING/PONG confirms it) and closes for good
function Conn.close(c)
    if c._state == "closed" or c._closing then
        return nil, "closed"
    end
    c._closing = true
    if registry[c._name] == c then
        registry[c._name] = nil
    end
    c._main_sema:post(1)
    wake_writer(c)
    if not can_yield() then
        return true
    end
    local _, _, rt = location_timeouts()
    c._closed_sema:wait((rt + 1000) / 1000)
    if c._state ~= "closed" then
        return nil, "timeout"
    end
    if c._close_ok then
        return true
    end
    return nil, c._close_err
end


local function check_number(opts, name, min)
    local v = opts[name]
    if v ~= nil and (type(v) ~= "number" or v < min) then
        error("bad '" .. name .. "' option to 'shared' (a number >= " .. min
              .. " expected)", 3)
    end
    return v
end


-- nats.shared(name, opts): defines the worker's connection "name" (in
-- init_worker_by_lua*, or lazily) and returns its handle; nats.shared(name):
-- the handle, or nil, err when it is not defined
function _M.shared(name, opts)
    if type(name) ~= "string" then
        error("bad argument #1 to 'shared' (string expected, got "
              .. type(name) .. ")", 2)
    end
    local c = registry[name]
    if c then
        return c
    end
    if opts == nil then
        return nil, "shared connection '" .. name .. "' is not defined"
    end
    if type(opts) ~= "table" then
        error("bad argument #2 to 'shared' (table expected, got "
              .. type(opts) .. ")", 2)
    end

    local limits = opts.pending_limits
    if limits ~= nil and type(limits) ~= "table" then
        error("bad 'pending_limits' option to 'shared' (table expected)", 2)
    end
    limits = limits or {}
    local reconnect_wait = check_number(opts, "reconnect_wait", 0)
    local max_reconnects = check_number(opts, "max_reconnects", 0)
    local buffer_size = check_number(opts, "buffer_size", 1024)
    local ping_interval = check_number(opts, "ping_interval", 1)
    local max_pings_out = check_number(opts, "max_pings_out", 1)
    check_number(opts, "connect_timeout", 0)
    check_number(opts, "send_timeout", 0)
    check_number(opts, "read_timeout", 0)
    check_number(limits, "msgs", 1)
    check_number(limits, "bytes", 1)

    c = {
        _name = name,
        _opts = opts,
        _state = "reconnecting",
        _connected = false,
        _closing = false,
        _exiting = false,
        _ever = false,
        _lost = nil,
        _reconnect_wait = reconnect_wait or DEFAULT_RECONNECT_WAIT,
        _max_reconnects = max_reconnects,
        _ping_interval = ping_interval or DEFAULT_PING_INTERVAL,
        _max_pings_out = max_pings_out or DEFAULT_MAX_PINGS_OUT,
        _pings_out = 0,
        _lim_msgs = limits.msgs or DEFAULT_PENDING_MSGS,
        _lim_bytes = limits.bytes or DEFAULT_PENDING_BYTES,
        _info = { headers = true, max_payload = DEFAULT_MAX_PAYLOAD,
                  assumed = true },
        _max_payload = DEFAULT_MAX_PAYLOAD,
        -- the queue
        _qmax = buffer_size or DEFAULT_BUFFER_SIZE,
        _qcap = QUEUE_MIN,
        _qbuf = ffi_new("char[?]", QUEUE_MIN),
        _qlen = 0,
        _ctl = {},
        _ctl_at = {},
        _ctl_keep = {},
        _nctl = 0,
        _segbytes = 0,
        _seg_min = SEG_MIN,
        _prefixes = {},
        _nprefixes = 0,
        _wsema = new_sema(),
        _wsleep = false,
        _wbusy = false,
        _nroom = 0,
        _roomsema = new_sema(),
        -- PINGs in flight, oldest first
        _pq = {},
        _pqh = 1,
        _pqt = 0,
        -- requests in flight by token, and spare waiters
        _resp = {},
        _wfree = {},
        _nwfree = 0,
        _main_sema = new_sema(),
        _closed_sema = new_sema(),
        _first = true,
        _nup = 0,
        _up_sema = new_sema(),
        -- stats
        _in_msgs = 0,
        _out_msgs = 0,
        _in_bytes = 0,
        _out_bytes = 0,
        _reconnects = 0,
        _dropped = 0,
    }
    wire_init(c)
    if c._qmax < QUEUE_MIN then
        c._qcap = c._qmax
        c._qbuf = ffi_new("char[?]", c._qmax)
    end
    local ok, err = wire.reset(c)   -- the subscription table, for good
    if not ok then
        return nil, err
    end
    setmetatable(c, conn_mt)

    ok, err = timer_at(0, main, c)
    if not ok then
        return nil, "cannot start the connection: " .. tostring(err)
    end
    -- its premature run tells the connection that the worker exits
    timer_at(EXIT_TIMER, on_exit, c)

    registry[name] = c
    return c
end


return _M
