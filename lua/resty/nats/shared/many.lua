-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared.many: conn:request_many, a request that takes every
-- reply: scatter-gather and discovery ($SRV.PING). The replies come to an
-- inbox of the request's own (a request-scoped subscription), until the
-- timeout, max replies, or stall ms without one after the first.

local new_inbox = require("resty.nats.jetstream").new_inbox
local now_ms = require("resty.nats.settings").now_ms

local type, error = type, error
local math_min = math.min


local _M = {}


local function check_ms(v, name)
    if v ~= nil and (type(v) ~= "number" or v <= 0) then
        error("bad '" .. name .. "' option to 'request_many' (a positive "
              .. "number expected)", 3)
    end
    return v
end


-- request_many(subject, payload [, { timeout = ms, max = n, stall = ms,
-- headers = { ... } }]): the replies (an array, {} when none came), or
-- nil, err ("no responders" when the server says nobody listens)
function _M.request_many(c, subject, payload, opts)
    if opts ~= nil and type(opts) ~= "table" then
        error("bad argument #3 to 'request_many' (table expected, got "
              .. type(opts) .. ")", 2)
    end
    opts = opts or {}
    local timeout = check_ms(opts.timeout, "timeout")
                    or c._default_timeout()
    local max = check_ms(opts.max, "max")
    local stall = check_ms(opts.stall, "stall")
    local inbox, err = new_inbox()
    if not inbox then
        return nil, err
    end
    local sub
    sub, err = c:subscribe(inbox)
    if not sub then
        return nil, err
    end
    local ok
    ok, err = c:publish(subject, payload, { reply_to = inbox,
                                            headers = opts.headers })
    if not ok then
        sub:unsubscribe()
        return nil, err
    end
    local replies = {}
    local deadline = now_ms() + timeout
    local last
    while not max or #replies < max do
        local now = now_ms()
        local wait = deadline - now
        if last and stall then
            wait = math_min(wait, last + stall - now)
        end
        if wait <= 0 then
            break
        end
        local m
        m, err = sub:next(wait)
        if not m then
            if err ~= "timeout" then
                sub:unsubscribe()
                return nil, err
            end
            break
        end
        if m.status == 503 and m.payload == "" and #replies == 0 then
            sub:unsubscribe()
            return nil, "no responders"
        end
        replies[#replies + 1] = m
        last = now_ms()
    end
    sub:unsubscribe()
    return replies
end


return _M
