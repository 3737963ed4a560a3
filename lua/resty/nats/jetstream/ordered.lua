-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.ordered: ordered consumers (ADR-17's contract):
-- every message of a stream (on a filter) once, in stream order, from a
-- start point, on either kind of connection. Under it, a feed
-- (resty.nats.jetstream.feed): an ephemeral consumer (ack none, in
-- memory, one replica, idle heartbeats, an inactive threshold; pushing
-- with flow control on a shared connection, pulled on a per-request
-- object) made again from the next stream sequence on a gap, a missed
-- heartbeat, a deleted consumer or a reconnect. It ends with oc:close(), with the request that
-- made it (shared connection), or when its per-request object goes back
-- to the pool or is closed; its consumer is deleted at the server then.

local jetstream = require "resty.nats.jetstream"
local check_name = jetstream.check_name
local feed_open = require("resty.nats.jetstream.feed").open

local type = type
local error, setmetatable = error, setmetatable
local str_find = string.find
local math_max = math.max


local _M = {}

local OC = {}
local oc_mt = { __index = OC }

local BATCH = 4000                      -- messages a pull request asks for
local BATCH_BYTES = 1024 * 1024         -- and bytes, at most (see below)
local EXPIRES = 30000                   -- ms a pull request waits
local HEARTBEAT = 5000                  -- ms between its idle heartbeats
                                        -- (none for twice that: made again)

local POLICIES = {
    all = true, last = true, new = true, by_start_sequence = true,
    by_start_time = true, last_per_subject = true,
}


local function bad_opt(name, what)
    error("bad '" .. name .. "' option to 'ordered_consumer' (" .. what
          .. ")", 4)
end


local function check_opts(opts)
    if opts == nil then
        return {}
    end
    if type(opts) ~= "table" then
        error("bad argument #2 to 'ordered_consumer' (table expected, got "
              .. type(opts) .. ")", 4)
    end
    local filter = opts.filter_subject
    if filter ~= nil and (type(filter) ~= "string" or filter == ""
                          or str_find(filter, "[%s%c]"))
    then
        bad_opt("filter_subject", "a subject expected")
    end
    local policy = opts.deliver_policy
    if policy ~= nil and not POLICIES[policy] then
        bad_opt("deliver_policy", "all, last, new, by_start_sequence, "
                .. "by_start_time or last_per_subject expected")
    end
    local seq = opts.opt_start_seq
    if policy == "by_start_sequence" then
        if type(seq) ~= "number" or seq < 1 or seq % 1 ~= 0 then
            bad_opt("opt_start_seq", "a sequence number >= 1 expected")
        end
    elseif seq ~= nil then
        bad_opt("opt_start_seq", "only with by_start_sequence")
    end
    local time = opts.opt_start_time
    if policy == "by_start_time" then
        if type(time) ~= "string" or time == "" then
            bad_opt("opt_start_time", "an RFC 3339 time expected")
        end
    elseif time ~= nil then
        bad_opt("opt_start_time", "only with by_start_time")
    end
    local hb = opts.heartbeat
    if hb ~= nil and (type(hb) ~= "number" or hb < 100) then
        bad_opt("heartbeat", "a number of ms >= 100 expected")
    end
    return opts
end


-- js:ordered_consumer(stream [, opts]): the ordered consumer, or nil,
-- err, code
function _M.open(js, stream, opts)
    local ok, err = check_name(stream, "stream")
    if not ok then
        return nil, err
    end
    opts = check_opts(opts)
    -- a pull request's bytes must hold any one message the server takes,
    -- else such a message could never be delivered
    local si = js._conn:server_info()
    local max_payload = si and si.max_payload or 0
    local feed, code
    feed, err, code = feed_open(js, stream, {
        filter_subject = opts.filter_subject,
        deliver_policy = opts.deliver_policy,
        opt_start_seq = opts.opt_start_seq,
        opt_start_time = opts.opt_start_time,
        headers_only = opts.headers_only and true or nil,
        batch = BATCH,
        max_bytes = math_max(BATCH_BYTES, max_payload + 65536),
        expires = math_max(EXPIRES, 3 * (opts.heartbeat or HEARTBEAT)),
        heartbeat = opts.heartbeat or HEARTBEAT,
        -- a shared connection reads its socket all the time: a push
        -- consumer with flow control (no round trips, less work for the
        -- server); a per-request object reads it only inside calls, so
        -- the server sends only what pull requests asked for (a push
        -- consumer's window could fill the socket while the handler does
        -- something else, and the server cuts slow consumers off)
        push = js._conn._background and true or nil,
    })
    if not feed then
        return nil, err, code
    end
    return setmetatable({ _feed = feed, stream = stream }, oc_mt)
end


-- oc:next([timeout_ms]): the next message (subject, payload, headers,
-- metadata = { stream, consumer, sequence = { stream, consumer },
-- num_pending, num_delivered, timestamp, domain }); nil, "timeout" when
-- none came within timeout_ms (default: 30 s; the consumer goes on);
-- nil, "closed" after close(); nil, err
function OC.next(oc, timeout)
    if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
        error("bad argument #1 to 'next' (a number of ms >= 0 expected)", 2)
    end
    local m, md, code = oc._feed:next(timeout)
    if not m then
        if code then
            return nil, md, code
        end
        return nil, md
    end
    -- (the engine's message and metadata tables, reused: one table more
    -- per message instead of four)
    md.sequence = { stream = md.stream_seq, consumer = md.consumer_seq }
    m.metadata = md
    m.reply_to = nil
    m.sid = nil
    return m
end


-- oc:stats(): { consumer = the current consumer's name, stream_seq = of
-- the last message returned, restarts = consumers made again }
function OC.stats(oc)
    local f = oc._feed
    return { consumer = f._consumer, stream_seq = f._sseq,
             restarts = f.restarts }
end


-- oc:close(): true; nil, "closed" the second time
function OC.close(oc)
    return oc._feed:close()
end


return _M
