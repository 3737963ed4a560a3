-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared.scope: subscriptions of a shared connection that
-- belong to a request (made without a callback) end when their request
-- does. The nginx module records the end of a request (a cleanup of its
-- pool, by id); a timer of the worker sweeps the ids recorded since its
-- last run and unsubscribes what they held.

local ffi = require "ffi"
local core = require "resty.nats.core"

local OK = core.OK
local get_request = core.get_request
local on_request_end = core.on_request_end
local ended = core.ended

local timer_every = ngx.timer.every
local tonumber = tonumber


local _M = {}

local SWEEP_INTERVAL = 0.2              -- s between sweeps of ended requests
local SWEEP_BATCH = 64

-- Per worker: request-scoped subscriptions of every shared connection by
-- id, until their request ends
local scoped = {}
local last_id = 0
local sweeping = false

local ended_ids = ffi.new("uint64_t[?]", SWEEP_BATCH)


local function sweep(premature)
    while true do
        local n = ended(ended_ids, SWEEP_BATCH)
        for i = 0, n - 1 do
            local id = tonumber(ended_ids[i])
            local sub = scoped[id]
            if sub then
                scoped[id] = nil
                sub:unsubscribe()
            end
        end
        if n < SWEEP_BATCH then
            break
        end
    end
    if premature then
        sweeping = false
    end
end


-- an id for a subscription of the calling request, told to the nginx
-- module; or nil, err
function _M.new_id()
    local r = get_request and get_request()
    if not r or not on_request_end then
        return nil, "no request to scope the subscription to"
    end
    last_id = last_id + 1
    if on_request_end(r, last_id) ~= OK then
        return nil, "no memory"
    end
    return last_id
end


-- sub ends with the request of id; true, or nil, err
function _M.add(id, sub)
    sub._scoped_id = id
    scoped[id] = sub
    if not sweeping then
        local ok, err = timer_every(SWEEP_INTERVAL, sweep)
        if not ok then
            scoped[id] = nil
            return nil, "cannot start the sweeper: " .. err
        end
        sweeping = true
    end
    return true
end


-- sub ended before its request
function _M.forget(sub)
    local id = sub._scoped_id
    if id then
        scoped[id] = nil
    end
end


return _M
