-- GET /pubcost?port=P&n=N&size=S&buf=0|1&wbuf=B[&real=1]: the cost of one
-- publish of a per-request object in ns (the worker's CPU time), with the
-- cosocket replaced by a stub once connected: what is left is the
-- library's own work per message (argument checks, framing, the call of
-- the send), without the kernel. buf=1: the stub has send_nats_buf (the
-- patched lua module), buf=0: it has send only (the stock one). wbuf:
-- set_write_buffer(wbuf). real=1: the real cosocket (the kernel's work
-- and the server's pace included; buf does not apply), then a flush.
-- wall=1: wall-clock time instead of CPU time.
-- Reaches into the object (_sock, _olen): for bench/pubcost.sh only.

local _M = {}


local function stub(with_buf)
    local s = {
        send = function(_, data) return #data end,
        settimeout = function() end,
        settimeouts = function() end,
        close = function() return 1 end,
    }
    if with_buf then
        s.send_nats_buf = function(_, _, n) return n end
    end
    return s
end


-- GET /pubcost?recv=1&port=P&n=N&size=S: the cost of receiving one
-- message (parse, dispatch, the callback's message table), in ns of the
-- worker's CPU time: wait(N) on a subscription whose socket is a stub
-- that returns the same 64 KiB of MSG frames at every read
local function recv()
    local nats = require "resty.nats"
    local count = tonumber(ngx.var.arg_n) or 1000000
    local size = tonumber(ngx.var.arg_size) or 16
    local n = assert(nats:new())
    assert(n:connect("127.0.0.1", tonumber(ngx.var.arg_port)))
    local got = 0
    local sid = assert(n:subscribe("bench.recv", function(m)
        got = got + #m.payload
    end))
    local frame = "MSG bench.recv " .. sid .. " " .. size .. "\r\n"
                  .. string.rep("x", size) .. "\r\n"
    local chunk = string.rep(frame, math.floor(65536 / #frame))
    local real = n._sock
    n._sock = {
        receiveany = function() return chunk end,
        send = function(_, data) return #data end,
        settimeout = function() end,
        settimeouts = function() end,
    }
    assert(n:wait(100000))      -- the JIT compiles the loop first
    local t0 = os.clock()
    assert(n:wait(count))
    local dt = os.clock() - t0
    n._sock = real
    n._connected = false
    real:close()
    if got ~= (count + 100000) * size then
        ngx.say("received ", got / size, " of ", count + 100000)
        return
    end
    ngx.say(string.format("%.1f", dt * 1e9 / count))
end


function _M.run()
    if ngx.var.arg_recv == "1" then
        return recv()
    end
    local nats = require "resty.nats"
    local count = tonumber(ngx.var.arg_n) or 1000000
    local size = tonumber(ngx.var.arg_size) or 16
    local wbuf = tonumber(ngx.var.arg_wbuf) or 0
    local n = assert(nats:new())
    assert(n:connect("127.0.0.1", tonumber(ngx.var.arg_port)))
    local real = n._sock
    local stubbed = ngx.var.arg_real ~= "1"
    if stubbed then
        n._sock = stub(ngx.var.arg_buf == "1")
    end
    if wbuf > 0 then
        n:set_write_buffer(wbuf)
    end
    local payload = string.rep("x", size)
    for _ = 1, 100000 do         -- the JIT compiles the loop first
        n:publish("bench.sink.lua", payload)
    end
    local clock = os.clock
    if ngx.var.arg_wall == "1" then
        clock = function()
            ngx.update_time()
            return ngx.now()
        end
    end
    local t0 = clock()
    for _ = 1, count do
        local ok, err = n:publish("bench.sink.lua", payload)
        if not ok then
            ngx.say("publish: ", err)
            return
        end
    end
    if not stubbed then
        assert(n:flush())
    end
    local dt = clock() - t0
    n._sock = real
    if stubbed then
        n._olen = 0
    end
    n:close()
    ngx.say(string.format("%.1f", dt * 1e9 / count))
end


return _M
