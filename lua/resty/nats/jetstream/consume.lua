-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.jetstream.consume: continuous pull on a pull consumer the
-- caller made (a durable, usually), on a shared connection. Pull requests
-- stay outstanding on an inbox of its own: max_messages (and max_bytes)
-- asked, asked again once half of that came; each one expires after
-- `expires` ms and carries idle heartbeats. The messages go to the
-- callback in order, one at a time, in the subscription's light thread
-- (as conn:subscribe's callbacks), as consumer messages (msg:ack() and
-- the others). Pulls are sent again after a reconnect (the server forgot
-- them) and after two heartbeat periods without a message or heartbeat
-- (the consumer was deleted or the server restarted); a consumer that is
-- gone is logged and asked for again until c:stop().

local jetstream = require "resty.nats.jetstream"
local stream_and_consumer = jetstream.stream_and_consumer
local new_inbox = jetstream.new_inbox
local jsmsg = require "resty.nats.jetstream.msg"
local new_msg, pull_ended = jsmsg.new, jsmsg.pull_ended
local encode = require("resty.nats.jetstream.json").encode
local now_ms = require("resty.nats.settings").now_ms

local timer_at = ngx.timer.at
local ngx_log, ngx_WARN, ngx_ERR = ngx.log, ngx.WARN, ngx.ERR
local type, tostring = type, tostring
local error, setmetatable, pcall = error, setmetatable, pcall
local ipairs = ipairs
local math_max, math_min, math_floor = math.max, math.min, math.floor


local _M = {}

local Consumer = {}
local consumer_mt = { __index = Consumer }

local DEFAULT_MAX_MESSAGES = 500
local DEFAULT_EXPIRES = 30000           -- ms

-- asks for what brings the outstanding messages back to max_messages,
-- once they fell to half of it
local function refill(c)
    if c._stopped or c._pending > c._max / 2 then
        return
    end
    local n = c._max - c._pending
    local body = encode({ batch = n, max_bytes = c._max_bytes,
                          expires = c._expires * 1e6,
                          idle_heartbeat = c._heartbeat * 1e6 })
    local ok, err = c._conn:publish(c._next_subject, body,
                                    { reply_to = c._inbox })
    if not ok then
        -- (not connected: the next check asks again)
        ngx_log(ngx_WARN, "nats: consume of ", c._what, ": pull: ", err)
        return
    end
    c._pending = c._pending + n
end


-- a status message of the inbox
local function on_status(c, m)
    local status = m.status
    if status == 100 then
        -- an idle heartbeat: flow control does not apply to pulls
        return
    end
    local ended, left = pull_ended(m)
    if ended then
        -- a pull request ended with this many of its messages not sent
        c._pending = math_max(0, c._pending - (left or c._pending))
        refill(c)
        return
    end
    -- 409 Consumer Deleted, 503 no responders (no such consumer, no
    -- JetStream), ...: logged; pulls again at the next check
    ngx_log(ngx_ERR, "nats: consume of ", c._what, ": ", status, " ",
            tostring(m.description))
    c._pending = 0
    c._failed = true
end


local function on_msg(c, m)
    c._active = now_ms()
    if m.status then
        return on_status(c, m)
    end
    if not m.reply_to then
        return                          -- not a consumer's message
    end
    c._pending = math_max(0, c._pending - 1)
    c.delivered = c.delivered + 1
    local ok, err = pcall(c._callback, new_msg(c._js, m))
    if not ok then
        ngx_log(ngx_ERR, "nats: consume of ", c._what, ": callback failed: ",
                err)
    end
    refill(c)
end


-- every heartbeat period while it runs: after a reconnect, a failure or
-- two periods of silence, the outstanding pulls are counted lost and
-- asked again
local function check(premature, c)
    if premature or c._stopped then
        return
    end
    local conn = c._conn
    if conn._state == "closed" then
        return
    end
    if conn._state == "connected" then
        if c._reconnects ~= conn._reconnects or c._failed
           or now_ms() - c._active > 2 * c._heartbeat
        then
            c._reconnects = conn._reconnects
            c._failed = false
            c._active = now_ms()
            c._pending = 0
            refill(c)
        end
    end
    local ok, err = timer_at(c._heartbeat / 1000, check, c)
    if not ok and err ~= "process exiting" then
        ngx_log(ngx_WARN, "nats: consume of ", c._what, ": no more checks: ",
                err)
    end
end


local function check_opts(opts)
    if opts == nil then
        return {}
    end
    if type(opts) ~= "table" then
        error("bad argument #4 to 'consume' (table expected, got "
              .. type(opts) .. ")", 4)
    end
    for _, k in ipairs({ "max_messages", "max_bytes", "expires",
                         "idle_heartbeat" }) do
        local v = opts[k]
        if v ~= nil and (type(v) ~= "number" or v < 1 or v % 1 ~= 0) then
            error("bad '" .. k .. "' option to 'consume' (a positive "
                  .. "integer expected)", 4)
        end
    end
    if opts.idle_heartbeat and opts.idle_heartbeat
                               >= (opts.expires or DEFAULT_EXPIRES)
    then
        error("bad 'idle_heartbeat' option to 'consume' (less than expires "
              .. "expected)", 4)
    end
    return opts
end


-- js:consume(stream, consumer, callback [, { max_messages = 500,
-- max_bytes =, expires = 30000, idle_heartbeat = ms }]): the running
-- consumption (c:stop()), or nil, err, code
function _M.start(js, stream, consumer, callback, opts)
    local conn = js._conn
    if not conn._background then
        return nil, "consume needs a shared connection (nats.shared)"
    end
    local ok, err = stream_and_consumer(stream, consumer)
    if not ok then
        return nil, err
    end
    if type(callback) ~= "function" then
        error("bad argument #3 to 'consume' (function expected, got "
              .. type(callback) .. ")", 3)
    end
    opts = check_opts(opts)
    local info, code
    info, err, code = js:consumer_info(stream, consumer)
    if not info then
        return nil, err, code
    end
    if type(info.config) == "table" and info.config.deliver_subject then
        return nil, "not a pull consumer: " .. consumer
    end
    local inbox
    inbox, err = new_inbox()
    if not inbox then
        return nil, err
    end
    local expires = opts.expires or DEFAULT_EXPIRES
    local c = setmetatable({
        _js = js, _conn = conn, _callback = callback, _inbox = inbox,
        _what = stream .. " > " .. consumer,
        _next_subject = js._prefix .. ".CONSUMER.MSG.NEXT." .. stream .. "."
                        .. consumer,
        _max = opts.max_messages or DEFAULT_MAX_MESSAGES,
        _max_bytes = opts.max_bytes, _expires = expires,
        _heartbeat = opts.idle_heartbeat
                     or math_min(30000, math_floor(expires / 2)),
        _pending = 0, _active = now_ms(), _reconnects = conn._reconnects,
        delivered = 0,
    }, consumer_mt)
    local sub
    sub, err = conn:subscribe(inbox, function(m)
        on_msg(c, m)
    end)
    if not sub then
        return nil, err
    end
    c._sub = sub
    refill(c)
    ok, err = timer_at(c._heartbeat / 1000, check, c)
    if not ok then
        c:stop()
        return nil, "failed to create timer: " .. tostring(err)
    end
    return c
end


-- c:stop(): no more messages to the callback (those already pulled are
-- left to the consumer's ack_wait); true, or nil, "stopped"
function Consumer.stop(c)
    if c._stopped then
        return nil, "stopped"
    end
    c._stopped = true
    c._sub:unsubscribe()
    return true
end


return _M
