-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.feed: the messages of a stream, in stream order,
-- each once, read at the reader's pace with a bounded number of messages
-- and bytes in flight, on either kind of connection. Under ordered
-- consumers (resty.nats.jetstream.ordered) and object store reads.
--
-- An ephemeral pull consumer (no acks, in memory, one replica) is asked
-- for batches of messages to the feed's inbox, two batches ahead: the
-- next batch is asked once the one before it is read. At most two batches
-- are ever on their way, whatever the stream's size or the number of
-- feeds on one connection (a push consumer's flow control lets its window
-- grow to tens of MiB instead, which a server's budget for the client
-- cannot give to many readers at once).
--
-- The feed makes its consumer again, from the stream sequence after the
-- last message it returned, when it sees a message skipped (a gap in the
-- consumer's sequence), its consumer gone (deleted, inactive too long, a
-- server restart: a 409, 404 or no responders), no heartbeat for two
-- heartbeat periods while it waits, or a reconnect of a shared connection.
-- Each consumer has an inbox of its own: nothing of an old one is read.

local jsmsg = require "resty.nats.jetstream.msg"
local metadata, header = jsmsg.metadata, jsmsg.header
local pull_ended = jsmsg.pull_ended
local jetstream = require "resty.nats.jetstream"
local new_inbox = jetstream.new_inbox
local encode = require("resty.nats.jetstream.json").encode
local now_ms = require("resty.nats.settings").now_ms
local pop = require("resty.nats.subs").pop

local ngx_now = ngx.now

local type, tonumber = type, tonumber
local math_min, math_max = math.min, math.max
local setmetatable = setmetatable


local _M = {}

local Feed = {}
local feed_mt = { __index = Feed }

-- a pull consumer not asked for INACTIVE ms is deleted by the server (the
-- feed makes it again if it is read after that)
local INACTIVE = 30000

-- the consumer's configuration: from after the last message returned,
-- else from where the first consumer started, else as opened
local function consumer_cfg(f)
    local cfg = {
        ack_policy = "none", mem_storage = true, num_replicas = 1,
        inactive_threshold = INACTIVE * 1e6,
        filter_subject = f._filter, headers_only = f._headers_only,
    }
    if f._push then
        -- a push consumer: flow control, and heartbeats that say the last
        -- consumer sequence sent
        cfg.deliver_subject = f._inbox
        cfg.flow_control = true
        cfg.idle_heartbeat = f._heartbeat * 1e6
    end
    local from = f._sseq > 0 and f._sseq + 1 or f._resume
    if from then
        cfg.deliver_policy = "by_start_sequence"
        cfg.opt_start_seq = from
    else
        local start = f._start
        cfg.deliver_policy = start.deliver_policy
        cfg.opt_start_seq = start.opt_start_seq
        cfg.opt_start_time = start.opt_start_time
    end
    return cfg
end


-- (re)makes the consumer of feed f: true, or nil, err, code
local function start(f)
    local js = f._js
    local conn = js._conn
    if f._sub then
        f:_drop()
    end
    local inbox, err = new_inbox()
    if not inbox then
        return nil, err
    end
    local sub
    sub, err = conn:_subscribe(inbox)
    if not sub then
        return nil, err
    end
    f._sub, f._inbox = sub, inbox
    sub._split = f._split
    -- a request-scoped subscription of a shared connection ends with its
    -- request, a per-request object's with its return to the pool: the
    -- consumer goes with it
    sub._owner = f
    local ci, code
    ci, err, code = js:add_consumer(f._stream, consumer_cfg(f))
    if not ci then
        f._sub = nil
        sub._owner = nil
        sub:unsubscribe()
        return nil, err, code
    end
    f._consumer = ci.name
    f._next_subject = js._prefix .. ".CONSUMER.MSG.NEXT." .. f._stream
                      .. "." .. ci.name
    f._cseq = 0
    f._asked = 0
    f._active = now_ms()
    f._reconnects = conn._reconnects
    if f._sseq == 0 and not f._resume
       and f._start.deliver_policy ~= "last_per_subject"
    then
        -- where this consumer starts is where a new one must start as
        -- long as nothing was returned ("new": not later messages)
        local d = type(ci.delivered) == "table"
                  and tonumber(ci.delivered.stream_seq)
        if d then
            f._resume = d + 1
        end
    end
    if f._left == nil and f._count then
        f._left = ci.num_pending or 0
    end
    f.restarts = f.restarts + (f._started and 1 or 0)
    f._started = true
    return true
end


-- one pull request for the next batch (never more messages than are
-- left, when that is known): true, or nil, err
local function ask_one(f)
    local n = f._batch
    local left = f._left
    if left then
        n = math_min(n, left - f._asked)
    end
    local body = encode({ batch = n, max_bytes = f._max_bytes,
                          expires = f._expires * 1e6,
                          idle_heartbeat = f._heartbeat
                                           and f._heartbeat * 1e6 })
    local ok, err = f._js._conn:publish(f._next_subject, body,
                                        { reply_to = f._inbox })
    if not ok then
        return nil, err
    end
    f._asked = f._asked + n
    return true
end


-- asks for batches until two are on their way
local function ask(f)
    if f._push then
        return true
    end
    while f._asked <= f._batch and (not f._left or f._asked < f._left) do
        local ok, err = ask_one(f)
        if not ok then
            return nil, err
        end
    end
    return true
end


-- open(js, stream, opts): opts = { filter_subject =, deliver_policy =
-- "all" (default) | "last" | "new" | "by_start_sequence" | "by_start_time"
-- | "last_per_subject", opt_start_seq =, opt_start_time =, headers_only =,
-- count = messages to read (true: what is there at the start; nil: no
-- end), batch = messages per pull request, max_bytes = bytes per pull
-- request, expires = ms a pull request waits, heartbeat = ms (idle
-- heartbeats; nil: none), push = true (a push consumer with flow control
-- instead of pull requests: no round trips, a window the server sizes;
-- needs heartbeat), split = bytes (payloads over it come as lists of
-- strings of at most that many bytes: events.build_msg) }. The feed, or
-- nil, err, code.
function _M.open(js, stream, opts)
    local f = setmetatable({
        _js = js, _stream = stream, _filter = opts.filter_subject,
        _headers_only = opts.headers_only or nil,
        _start = {
            deliver_policy = opts.deliver_policy or "all",
            opt_start_seq = opts.opt_start_seq,
            opt_start_time = opts.opt_start_time,
        },
        _sseq = 0, _cseq = 0, _asked = 0,
        _count = opts.count ~= nil,
        _lps = opts.deliver_policy == "last_per_subject" or nil,
        _left = type(opts.count) == "number" and opts.count or nil,
        _batch = math_max(1, opts.batch or 256),
        _max_bytes = opts.max_bytes,
        _expires = opts.expires or js._timeout,
        _heartbeat = opts.heartbeat,
        _push = opts.push and true or nil,
        _split = opts.split or false,
        restarts = 0,
    }, feed_mt)
    local ok, err, code = start(f)
    if not ok then
        return nil, err, code
    end
    return f
end


-- a status message on the feed's inbox: true to go on, or "restart"
local function on_status(f, m)
    local status = m.status
    if status == 100 then
        if not f._push then
            return true                 -- a pull request's heartbeat
        end
        local conn = f._js._conn
        if m.reply_to then
            -- flow control: the server sends more once this is answered
            conn:publish(m.reply_to, "")
            return true
        end
        -- an idle heartbeat: the consumer's last sequence sent (a gap when
        -- it is past the last one read), and a stalled consumer to wake
        local stalled = header(m.headers, "Nats-Consumer-Stalled")
        if stalled then
            conn:publish(stalled, "")
        end
        local last = tonumber(header(m.headers, "Nats-Last-Consumer"))
        -- (the heartbeat comes after the messages it counts: they were
        -- read before it, unless some were lost)
        if last and last > f._cseq then
            return "restart"
        end
        return true
    end
    local ended, pending = pull_ended(m)
    if ended then
        -- a pull request ended (expired, or its max_bytes reached) with
        -- this many of its messages not sent
        if pending then
            f._asked = math_max(0, f._asked - pending)
        else
            f._asked = 0
        end
        return true
    end
    -- the consumer is gone (409 Consumer Deleted, 404, 503 no
    -- responders) or in a state the feed does not know: again
    return "restart"
end


-- m (popped from the feed's subscription) is the next message: f moves
-- past it; its metadata md
local function take(f, m, md)
    f._cseq = md.consumer_seq
    f._sseq = md.stream_seq
    f._asked = f._asked - 1
    if f._left then
        f._left = f._left - 1
    end
    return m, md
end


-- m (md: its metadata; the next one in the consumer's order) comes after
-- messages the consumer skipped? nats-server 2.9 moves a consumer to a
-- message with Nats-Rollup on a subject of its filter when it is stored,
-- past whatever the consumer had not delivered yet (seen with 2.9.10):
-- such a message after a gap in stream sequences is taken as that (it
-- may be a gap of messages outside the filter: then the consumer is made
-- again for nothing, which costs a request and loses nothing: the first
-- message of a consumer made again so is taken as it comes). Not before
-- the feed returned a message (gaps at the start are the filter's), nor
-- for last_per_subject, whose gaps are what it is for.
local function skipped(f, m, md)
    local h = m.headers
    if not h or not h["Nats-Rollup"] or f._lps or f._sseq == 0
       or f._cseq == 0
    then
        return false
    end
    return md.stream_seq > f._sseq + 1
end


-- next() when the fast path could not: waits, asks, restarts (m: a
-- message popped already and not taken)
local function next_slow(f, timeout, m)
    if f._closed then
        return nil, "closed"
    end
    if f._left and f._left <= 0 then
        return nil, "end"
    end
    local sub = f._sub
    local conn = f._js._conn
    local deadline = now_ms() + (timeout or f._expires)
    local hb = f._heartbeat
    -- (no subscription: a remake failed, e.g. during a leader election
    -- or a server's restart; this call tries again)
    local restart = not sub or f._reconnects ~= conn._reconnects
    while true do
        local ok, err, code
        if m then
            -- (a popped message: handled below as if just read)
            err = nil
        elseif restart then
            restart = false
            ok, err, code = start(f)
            if not ok then
                return nil, err, code
            end
            sub = f._sub
        end
        if not m then
            ok, err = ask(f)
            if not ok then
                return nil, err
            end
            local left = deadline - now_ms()
            if left <= 0 then
                return nil, "timeout"
            end
            m, err = sub:next(hb and math_min(left, hb) or left)
        end
        if m then
            local msg = m
            m = nil
            f._active = now_ms()
            local md = not msg.status and metadata(msg.reply_to)
            if md then
                local cseq = md.consumer_seq
                if cseq == f._cseq + 1 and not skipped(f, msg, md) then
                    return take(f, msg, md)
                end
                -- one seen already (a shared connection's move to another
                -- server: both connections subscribed for a moment) is
                -- dropped; a skipped one restarts the consumer
                restart = cseq > f._cseq or md.stream_seq > f._sseq
            elseif msg.status then
                restart = on_status(f, msg) == "restart"
            end
            -- (anything else on the inbox is not the consumer's: ignored)
        elseif err == "timeout" then
            restart = f._reconnects ~= conn._reconnects
                      or (hb and now_ms() - f._active > 2 * hb) or false
        elseif f._closed then
            return nil, "closed"
        else
            return nil, err
        end
    end
end


-- next([timeout]): the next message and its metadata (m, md); nil, "end"
-- when every message of a counted feed was read; nil, "timeout" when none
-- came within timeout ms (default: the feed's expires; the feed goes on);
-- nil, err on failure. The fast path (a message queued already, the next
-- one in order) is loop-free, so that LuaJIT compiles it into the
-- caller's loop.
function Feed.next(f, timeout)
    local sub = f._sub
    local left = f._left
    if not sub or (left and left <= 0)
       or f._reconnects ~= f._js._conn._reconnects
    then
        return next_slow(f, timeout)
    end
    local m = pop(sub)
    if not m then
        return next_slow(f, timeout)
    end
    local md = not m.status and metadata(m.reply_to)
    if not md or md.consumer_seq ~= f._cseq + 1 or skipped(f, m, md) then
        return next_slow(f, timeout, m)
    end
    f._active = ngx_now() * 1000
    take(f, m, md)
    left = f._left
    if not f._push and f._asked <= f._batch and (not left or f._asked < left)
    then
        -- the batch before this one was read: the next one (when that
        -- fails, the next call's slow path asks again)
        ask_one(f)
    end
    return m, md
end


-- the subscription goes, and the consumer (without waiting)
function Feed._drop(f)
    local sub = f._sub
    f._sub = nil
    if sub then
        sub._owner = nil
        sub:unsubscribe()
    end
    if f._consumer then
        f._js:_delete_consumer_nowait(f._stream, f._consumer,
                                      f._inbox .. ".deleted")
        f._consumer = nil
    end
end


-- the end of the feed's subscription by its owner's end (the request, a
-- return to the pool, a close of the connection): no more reading
function Feed._end(f)
    f._closed = true
    f:_drop()
end


-- close(): no more reading; the feed's subscription and consumer go
function Feed.close(f)
    if f._closed then
        return nil, "closed"
    end
    f._closed = true
    f:_drop()
    return true
end


return _M
