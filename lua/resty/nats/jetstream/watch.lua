-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.watch: a watcher of a stream's subjects on a
-- shared connection, under key-value watches (resty.nats.kv) and object
-- store watches (resty.nats.objstore): an ephemeral push consumer (no
-- acks, in memory, flow control, idle heartbeats) delivers the last
-- message of each subject first, then every new one, in order, to a
-- callback run as the callbacks of conn:subscribe (in a timer). Every
-- WATCH_CHECK s the watcher checks, after a reconnect or WATCH_STALE ms
-- without a message or heartbeat, that its consumer is still there, and
-- makes it again from the sequence after the last one delivered when the
-- server lost it (a restart loses an in-memory consumer): nothing missed,
-- nothing twice.

local metadata = require("resty.nats.jetstream.msg").metadata
local new_inbox = require("resty.nats.jetstream").new_inbox
local now_ms = require("resty.nats.settings").now_ms

local timer_at = ngx.timer.at
local ngx_log, WARN = ngx.log, ngx.WARN
local setmetatable, tostring = setmetatable, tostring
local type, tonumber = type, tonumber


local _M = {}

local Watcher = {}
local watcher_mt = { __index = Watcher }

local WATCH_HEARTBEAT = 5000            -- ms
local WATCH_CHECK = 1                   -- s
local WATCH_STALE = 3 * WATCH_HEARTBEAT
local ERR_CONSUMER_NOT_FOUND = 10014


-- (re)makes the push consumer of watcher w: the last message of each
-- subject first, or, when w has seen some, everything after the last
local function make_consumer(w)
    local cfg = {
        deliver_subject = w._inbox, ack_policy = "none",
        filter_subject = w._filter, flow_control = true,
        idle_heartbeat = WATCH_HEARTBEAT * 1e6, mem_storage = true,
        headers_only = w._headers_only,
    }
    local from = w._seq > 0 and w._seq + 1 or w._resume
    if from then
        cfg.deliver_policy = "by_start_sequence"
        cfg.opt_start_seq = from
    else
        cfg.deliver_policy = w._policy
    end
    local info, err, code = w._js:add_consumer(w._stream, cfg)
    if not info then
        return nil, err, code
    end
    w._consumer = info.name
    w._active = now_ms()
    if w._policy == "new" and not from then
        -- made again before any message came: not from "new" then, but
        -- from where this one started (changes meanwhile are not lost)
        local d = type(info.delivered) == "table"
                  and tonumber(info.delivered.stream_seq)
        w._resume = d and d + 1
    end
    return true
end


-- every WATCH_CHECK s while the watcher lives: after a reconnect or a
-- silence, is its consumer still there? If the server lost it, make it
-- again (errors such as JetStream not ready yet: the next check retries)
local function check(premature, w)
    if premature or w._stopped then
        return
    end
    local st = w._conn:stats()
    if st.state == "closed" then
        return
    end
    if st.state == "connected"
       and (st.reconnects ~= w._reconnects
            or now_ms() - w._active > WATCH_STALE)
    then
        local info, _, code = w._js:consumer_info(w._stream, w._consumer)
        if info then
            w._reconnects = st.reconnects
            w._active = now_ms()
        elseif code == ERR_CONSUMER_NOT_FOUND then
            local ok, err = make_consumer(w)
            if ok then
                w._reconnects = st.reconnects
                ngx_log(WARN, "nats: ", w._what, ": the server lost the ",
                        "consumer, made again from ",
                        w._seq > 0 and "sequence " .. (w._seq + 1)
                                   or "the last values")
            else
                ngx_log(WARN, "nats: ", w._what, ": making the consumer ",
                        "again: ", err)
            end
        end
    end
    if not w._stopped then
        local ok, err = timer_at(WATCH_CHECK, check, w)
        if not ok and err ~= "process exiting" then
            ngx_log(WARN, "nats: ", w._what, ": no more checks: ", err)
        end
    end
end


-- new(js, stream, filter, what, on_msg [, opts]): on_msg(m, md) for each
-- message of the stream on filter (md: its metadata), once, in order;
-- what names the watcher in log lines. opts: deliver_policy (the last
-- message of each subject first by default; "all", "new"), headers_only.
-- Returns the watcher, or nil, err, code.
function _M.new(js, stream, filter, what, on_msg, opts)
    local conn = js._conn
    if not conn._background then
        return nil, "watch needs a shared connection (nats.shared)"
    end
    local inbox, err = new_inbox()
    if not inbox then
        return nil, err
    end
    local w = setmetatable({
        _js = js, _conn = conn, _stream = stream, _filter = filter,
        _what = what, _inbox = inbox, _seq = 0, _active = now_ms(),
        _policy = opts and opts.deliver_policy or "last_per_subject",
        _headers_only = opts and opts.headers_only or nil,
        _reconnects = conn:stats().reconnects,
    }, watcher_mt)
    local sub
    sub, err = conn:subscribe(inbox, function(m)
        w._active = now_ms()
        if m.status then
            -- heartbeats and flow control: answer flow control
            if m.reply_to then
                conn:publish(m.reply_to, "")
            end
            return
        end
        -- (a consumer pushes before its creation is answered: messages
        -- are told apart by their stream sequence, not by consumer name)
        local md = metadata(m.reply_to) or {}
        local seq = md.stream_seq
        if seq then
            if seq <= w._seq then
                return  -- delivered already (a consumer made again)
            end
            w._seq = seq
        end
        on_msg(m, md)
    end)
    if not sub then
        return nil, err
    end
    w._sub = sub
    local ok, code
    ok, err, code = make_consumer(w)
    if not ok then
        sub:unsubscribe()
        return nil, err, code
    end
    ok, err = timer_at(WATCH_CHECK, check, w)
    if not ok then
        w:stop()
        return nil, "failed to create timer: " .. tostring(err)
    end
    return w
end


-- stop(): the watcher ends (its consumer is deleted)
function Watcher.stop(w)
    if w._stopped then
        return nil, "stopped"
    end
    w._stopped = true
    w._sub:unsubscribe()
    w._js:delete_consumer(w._stream, w._consumer)
    return true
end


return _M
