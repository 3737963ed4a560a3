use lib 't/lib';
use TestNats;
plan tests => repeat_each() * blocks() * 2;
run_tests();
__DATA__

=== TEST 1: worker CPU per step
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local N = 20000
            local port = $TEST_NGINX_NATS_PORT
            local out = {}
            local function measure(name, f)
                collectgarbage()
                local c0 = os.clock()
                for i = 1, N do f() end
                collectgarbage()
                out[#out + 1] = string.format("%s %.1f", name, (os.clock() - c0) / N * 1e6)
            end
            local opts = { timeout = 2000 }
            local c = assert(nats:new()); assert(c:connect("127.0.0.1", port)); assert(c:request("interop.echo", "x", opts)); assert(c:set_keepalive(60000, 10))
            measure("new", function() local c = nats:new() end)
            measure("new+connect+keepalive", function()
                local c = nats:new(); assert(c:connect("127.0.0.1", port)); assert(c:set_keepalive(60000, 10)) end)
            measure("cycle", function()
                local c = nats:new(); assert(c:connect("127.0.0.1", port)); assert(c:request("interop.echo", "x", opts)); assert(c:set_keepalive(60000, 10)) end)
            local one = assert(nats:new()); assert(one:connect("127.0.0.1", port))
            measure("request one conn", function() assert(one:request("interop.echo", "x", opts)) end)
            measure("publish+flush one conn", function() assert(one:publish("interop.sink.cpu", "x")); assert(one:flush()) end)
            one:close()
            jit.off()
            measure("cycle jit off", function()
                local c = nats:new(); assert(c:connect("127.0.0.1", port)); assert(c:request("interop.echo", "x", opts)); assert(c:set_keepalive(60000, 10)) end)
            jit.on()
            ngx.log(ngx.WARN, "CPU us: ", table.concat(out, ", "))
            ngx.say("ok")
        }
    }
--- request
GET /t
--- response_body
ok
--- timeout: 300
