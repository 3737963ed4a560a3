-- Helpers of the suites (t/*.t; TestNats puts t/lua/ on the Lua path).
--
-- t_ctl.send(port, cmd, timeout_ms?): one command ("stop", "start",
-- "kill", "pause", "resume", "ldm", "ldm-async", "wait", "healthy", "pid")
-- to the control port of a server started by NatsServer->controlled
-- (t/lib/NatsServer.pm); returns its answer line ("ok stop", ...,
-- "failed: ..."). timeout_ms: for the answer (default 20000; "ldm",
-- "wait" and "healthy" may take up to 60 s).

local _M = {}


function _M.send(port, cmd, timeout_ms)
    local s = ngx.socket.tcp()
    s:settimeout(timeout_ms or 20000)
    assert(s:connect("127.0.0.1", port))
    assert(s:send(cmd .. "\n"))
    local line = assert(s:receive("*l"))
    s:close()
    return line
end


return _M
