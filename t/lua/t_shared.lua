-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_shared.connected(name): the worker's shared connection name (started
-- by init_worker_by_lua), once it is connected. It connects in the
-- background: a request right after nginx starts would otherwise find it
-- still connecting.

local nats = require "resty.nats"

local _M = {}


-- waits up to 2 s; the caller's checks say what went wrong when it is
-- still not connected then
function _M.connected(name)
    local conn = assert(nats.shared(name))
    for _ = 1, 200 do
        if conn:stats().state == "connected" then break end
        ngx.sleep(0.01)
    end
    return conn
end


return _M
