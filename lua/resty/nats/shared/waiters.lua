-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.shared.waiters: what waits on a shared connection. A request
-- waits for its reply on a waiter (a semaphore and a result, reused by the
-- requests of the connection; the reader posts it through the engine's
-- reply routing); a caller arriving before the first connect is over waits
-- for it; and where a caller may wait at all (the phases that can yield).

local semaphore = require "ngx.semaphore"
local now_ms = require("resty.nats.settings").now_ms

local new_sema = semaphore.new
local get_phase = ngx.get_phase


local _M = { new_sema = new_sema }

local SPARE_WAITERS = 64

-- where semaphores can be waited on (a request may yield)
local YIELDABLE = {
    rewrite = true, access = true, content = true, timer = true,
    ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
    preread = true,
}


local function can_yield()
    return YIELDABLE[get_phase()] == true
end
_M.can_yield = can_yield


-- nil where the caller can wait, else why not
function _M.cannot_wait()
    if YIELDABLE[get_phase()] then
        return nil
    end
    return "cannot wait in the " .. get_phase() .. " phase"
end


-- the waiters' fields of connection c
function _M.init(c)
    c._wfree = {}
    c._nwfree = 0
    c._first = true         -- the first connect attempt is not over
    c._nup = 0
    c._up_sema = new_sema()
end


function _M.take(c)
    local n = c._nwfree
    if n > 0 then
        local w = c._wfree[n]
        c._wfree[n] = nil
        c._nwfree = n - 1
        return w
    end
    return { sema = new_sema(), msg = nil, err = nil, done = false,
             expires = 0 }
end


function _M.give(c, w)
    w.msg = nil
    w.err = nil
    w.done = false
    if w.sema:count() == 0 and c._nwfree < SPARE_WAITERS then
        local n = c._nwfree + 1
        c._nwfree = n
        c._wfree[n] = w
    end
end


-- Until the first connect attempt is over, a caller that can wait does
-- (a flush as the worker starts); afterwards an outage fails it at once.
-- true when connected.
function _M.wait_first(c, ms)
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


-- A caller that can wait does, within ms, until the connection is up (the
-- first connect, or a reconnect during an outage). true when connected.
function _M.wait_up(c, ms)
    local state = c._state
    if state == "connected" then
        return true
    end
    if state == "closed" or c._closing or not can_yield() then
        return false
    end
    local deadline = now_ms() + ms
    while true do
        local left = deadline - now_ms()
        if left <= 0 then
            return false
        end
        c._nup = c._nup + 1
        c._up_sema:wait(left / 1000)
        state = c._state
        if state == "connected" then
            return true
        end
        if state == "closed" or c._closing then
            return false
        end
    end
end


-- wakes every thread counted in c[count] that waits on semaphore c[sema]
local function wake_all(c, count, sema)
    local n = c[count]
    if n > 0 then
        c[count] = 0
        c[sema]:post(n)
    end
end
_M.wake_all = wake_all


function _M.first_over(c)
    c._first = false
    wake_all(c, "_nup", "_up_sema")
end


return _M
