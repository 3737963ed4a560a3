-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.watch: a watcher of a stream's subjects on a
-- shared connection, under key-value watches (resty.nats.kv) and object
-- store watches (resty.nats.objstore): the last message of each subject
-- first, then every new one, in order, once, to a callback run in a timer
-- (as the callbacks of conn:subscribe).
--
-- Two steps. The last messages are read through a feed (a pull consumer
-- with last_per_subject that stops after the ones there were: the feed
-- reads exactly that many), in a timer; then an ephemeral push consumer
-- (no acks, in memory, flow control, idle heartbeats) delivers everything
-- after the last sequence read. One push consumer with last_per_subject
-- would do both, but nats-server 2.9 may skip messages stored while such a
-- consumer finishes its last values (seen: a change made right after the
-- watch began never came).
--
-- Every WATCH_CHECK s the watcher checks its consumer: after WATCH_STALE
-- ms without a message or heartbeat (two heartbeats missed) it makes it
-- again; after a reconnect or a move to another server it asks whether
-- the server still has it, and makes it again when not (a restart loses
-- an in-memory consumer). Either way from the sequence after the last one
-- delivered: nothing missed, nothing twice.

local metadata = require("resty.nats.jetstream.msg").metadata
local new_inbox = require("resty.nats.jetstream").new_inbox
local feed_open = require("resty.nats.jetstream.feed").open
local now_ms = require("resty.nats.settings").now_ms

local timer_at = ngx.timer.at
local ngx_log, WARN, ngx_ERR = ngx.log, ngx.WARN, ngx.ERR
local setmetatable, tostring = setmetatable, tostring
local type, tonumber, pcall = type, tonumber, pcall
local parse_time = require("resty.nats.time").parse


local _M = {}

local Watcher = {}
local watcher_mt = { __index = Watcher }

local WATCH_HEARTBEAT = 5000            -- ms
local WATCH_CHECK = 1                   -- s
local WATCH_STALE = 2 * WATCH_HEARTBEAT + 1000
local ERR_CONSUMER_NOT_FOUND = 10014
local ERR_NO_MESSAGE = 10037


-- (re)makes the push consumer of watcher w: everything after the last
-- message delivered (all there is when there was none), or as its policy
-- says (all, new) when it never delivered any
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
    elseif w._policy == "last_per_subject" then
        -- (the last values were read first: none there)
        cfg.deliver_policy = "all"
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


-- the count of the connection's new links to a server (reconnects, and
-- moves away from a server in lame duck mode, whose JetStream goes at
-- once: consumers it held with it)
local function links(st)
    return st.reconnects + (st.moves or 0)
end


-- the consumer made again, after the last message delivered; the old one
-- (if the server still has it) deleted without waiting for the answer
local function remake(w, why)
    local old = w._consumer
    local ok, err = make_consumer(w)
    if not ok then
        ngx_log(WARN, "nats: ", w._what, ": making the consumer again: ", err)
        return
    end
    w._links = links(w._conn:stats())
    if old then
        w._js:_delete_consumer_nowait(w._stream, old, w._inbox .. ".deleted")
    end
    ngx_log(WARN, "nats: ", w._what, ": ", why, ", made again from ",
            w._seq > 0 and "sequence " .. (w._seq + 1) or "the last values")
end


-- every WATCH_CHECK s while the watcher lives: a consumer that sent no
-- message nor heartbeat for two heartbeats is made again (gone, or on a
-- node that went away: a consumer the server still lists but that no
-- longer delivers is no better); after a reconnect or a move, is it still
-- there? (errors such as JetStream not ready yet: the next check retries)
local function check(premature, w)
    if premature or w._stopped then
        return
    end
    local st = w._conn:stats()
    if st.state == "closed" then
        return
    end
    if st.state == "connected" and w._started and not w._consumer then
        -- the first push consumer could not be made: again
        local ok, err = make_consumer(w)
        if not ok then
            ngx_log(WARN, "nats: ", w._what, ": making the consumer: ", err)
        end
    elseif st.state == "connected" and w._consumer then
        if now_ms() - w._active > WATCH_STALE then
            remake(w, "no message nor heartbeat for "
                      .. WATCH_STALE / 1000 .. " s")
        elseif links(st) ~= w._links then
            local info, _, code = w._js:consumer_info(w._stream, w._consumer)
            if info then
                w._links = links(st)
            elseif code == ERR_CONSUMER_NOT_FOUND then
                remake(w, "the server lost the consumer")
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


-- nats-server 2.9 moves the consumers of a stream past the messages they
-- had not delivered yet when a message with Nats-Rollup is stored (seen
-- with 2.9.10: a change made just before another key's purge or an
-- object's replacement never came). So before a rollup message at seq
-- goes to the callback, what the filter has between the last one
-- delivered and it is read from the stream and delivered first.
local function fill_gap(w, seq)
    -- from after the last one delivered; before any: from where the
    -- consumer started ("new": where the first one began; "all" and
    -- last values that were none: the start)
    local from = w._seq > 0 and w._seq + 1 or w._resume
                 or (w._policy ~= "new" and 1)
    while from and from < seq do
        local sm, err, code = w._js:get_msg(w._stream,
                                            { next_by_subj = w._filter,
                                              seq = from })
        if not sm then
            if code ~= ERR_NO_MESSAGE then
                ngx_log(WARN, "nats: ", w._what, ": reading what came ",
                        "before a rollup: ", err)
            end
            return
        end
        if sm.seq >= seq then
            return
        end
        w._seq = sm.seq
        w._on_msg({ subject = sm.subject, payload = sm.payload,
                    headers = sm.headers },
                  { stream = w._stream, stream_seq = sm.seq,
                    timestamp = parse_time(sm.time), num_pending = 0 })
        from = sm.seq + 1
    end
end


-- m (md: its metadata) to the watcher's callback, unless it was already
local function deliver(w, m, md)
    -- (a consumer pushes before its creation is answered: messages are
    -- told apart by their stream sequence, not by consumer name)
    local seq = md.stream_seq
    if seq then
        if seq <= w._seq then
            return  -- delivered already (a consumer made again)
        end
        local h = m.headers
        if h and h["Nats-Rollup"] and w._started then
            fill_gap(w, seq)
        end
        w._seq = seq
    end
    w._on_msg(m, md)
end


-- the first step, in a timer: the last message of each subject through a
-- feed, then the push consumer from the sequence after
local function last_values(premature, w)
    if premature or w._stopped then
        return
    end
    local feed, err = feed_open(w._js, w._stream, {
        filter_subject = w._filter, deliver_policy = "last_per_subject",
        headers_only = w._headers_only, count = true,
    })
    if feed then
        while not w._stopped do
            local m, md = feed:next()
            if not m then
                if md ~= "end" then
                    err = md
                end
                break
            end
            w._active = now_ms()
            local ok, e = pcall(deliver, w, m, md)
            if not ok then
                ngx_log(ngx_ERR, "nats: ", w._what, ": callback failed: ", e)
            end
        end
        feed:close()
    end
    if err then
        ngx_log(WARN, "nats: ", w._what, ": reading the last values: ", err,
                "; going on with what came after")
    end
    w._started = true
    if not w._stopped then
        local ok
        ok, err = make_consumer(w)
        if not ok then
            -- (the next check makes it)
            ngx_log(WARN, "nats: ", w._what, ": making the consumer: ", err)
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
        _links = links(conn:stats()), _on_msg = on_msg,
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
        deliver(w, m, metadata(m.reply_to) or {})
    end)
    if not sub then
        return nil, err
    end
    w._sub = sub
    local ok, code
    if w._policy == "last_per_subject" then
        -- the stream must be there (its errors now, not in the timer)
        ok, err, code = w._js:stream_info(stream)
        if ok then
            ok, err = timer_at(0, last_values, w)
            if not ok then
                err = "failed to create timer: " .. tostring(err)
            end
        end
    else
        w._started = true
        ok, err, code = make_consumer(w)
    end
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
    if w._consumer then
        w._js:delete_consumer(w._stream, w._consumer)
    end
    return true
end


return _M
