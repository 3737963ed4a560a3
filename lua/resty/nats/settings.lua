-- Copyright (C) lua-resty-nats authors. MIT license, see LICENSE.
--
-- resty.nats.settings: what nginx.conf says for cosockets where the code
-- runs (lua_socket_*_timeout, lua_socket_pool_size), and the one rule for
-- timeouts: what the call says, else what set_timeout(s) (or connect's
-- timeout options) said, else what nginx.conf says for cosockets where the
-- caller runs (0 in set_timeouts also means that, as for
-- tcpsock:settimeouts). A default of ours never replaces a configured
-- value.

local ffi = require "ffi"
local core = require "resty.nats.core"

local socket_conf = core.socket_conf
local get_request = core.get_request
local OK = core.OK
local tonumber = tonumber
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time


local _M = {
    -- lua-nginx-module's defaults, where nginx.conf cannot be read
    DEFAULT_TIMEOUT = 60000,
    DEFAULT_POOL_SIZE = 30,
    -- request() waits at most this long by default (ms), and never longer
    -- than the read timeout
    DEFAULT_REQUEST_TIMEOUT = 5000,
}

local DEFAULT_TIMEOUT = _M.DEFAULT_TIMEOUT
local DEFAULT_POOL_SIZE = _M.DEFAULT_POOL_SIZE

-- filled and read with no yield in between
local conf_buf = ffi.new("uint64_t[4]")


-- the connect, send and read timeouts of the caller's location (ms)
local function location_timeouts()
    if socket_conf then
        local r = get_request()
        if r and socket_conf(r, conf_buf) == OK then
            return tonumber(conf_buf[0]), tonumber(conf_buf[1]),
                   tonumber(conf_buf[2])
        end
    end
    return DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, DEFAULT_TIMEOUT
end
_M.location_timeouts = location_timeouts


-- lua_socket_pool_size where the caller runs
local function location_pool_size()
    if socket_conf then
        local r = get_request()
        if r and socket_conf(r, conf_buf) == OK and conf_buf[3] > 0 then
            return tonumber(conf_buf[3])
        end
    end
    return DEFAULT_POOL_SIZE
end
_M.location_pool_size = location_pool_size


-- the read timeout set on this object (ms), or nil
local function explicit_read_timeout(self)
    local to = self._timeouts
    local rt = to and to[3]
    if rt and rt > 0 then
        return rt
    end
    return nil
end
_M.explicit_read_timeout = explicit_read_timeout


-- the read timeout in effect (ms): set on the object, else nginx.conf's;
-- it bounds every wait of a call as a whole
local function read_timeout(self)
    local rt = explicit_read_timeout(self)
    if rt then
        return rt
    end
    rt = self._loc_rt       -- one location per object: read it once
    if not rt then
        local _
        _, _, rt = location_timeouts()
        self._loc_rt = rt
    end
    return rt
end
_M.read_timeout = read_timeout


-- the wait of a request that gives none, from the read timeout rt (ms)
-- that applies: 5 s at most, and never longer than rt
function _M.request_timeout(rt)
    if rt > 0 and rt < _M.DEFAULT_REQUEST_TIMEOUT then
        return rt
    end
    return _M.DEFAULT_REQUEST_TIMEOUT
end


function _M.now_ms()
    ngx_update_time()
    return ngx_now() * 1000
end


return _M
