-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_ctl.send(port, cmd): one command ("stop", "start", "kill", "pause",
-- "resume") to the control port of a server started by
-- NatsServer->controlled (t/lib/NatsServer.pm); returns its answer line
-- ("ok stop", ...).

local _M = {}


function _M.send(port, cmd)
    local s = ngx.socket.tcp()
    s:settimeout(20000)
    assert(s:connect("127.0.0.1", port))
    assert(s:send(cmd .. "\n"))
    local line = assert(s:receive("*l"))
    s:close()
    return line
end


return _M
