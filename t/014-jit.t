# vim:set ft= ts=4 sw=4 et:
# The hot paths compile: a publish loop, the receive loop of wait() and
# the pooled request path (connect, synchronous request, set_keepalive),
# and publish/request through a shared connection
# hit nothing LuaJIT cannot compile (NYI) in the files of resty.nats and
# its modules: jit.v's aborts, filtered by t/lua/t_jit.lua (other aborts,
# "leaving loop in root trace", are transient recorder choices, retried
# by LuaJIT: not counted).

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();

# tens of thousands of messages under jit.v: seconds on a loaded machine
add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 60) unless defined $block->timeout;
});

run_tests();

__DATA__

=== TEST 1: publish (buffered and not) and receive loops compile
--- http_config
    lua_package_path "$TEST_NGINX_LUA_PACKAGE_PATH";
--- config
    location = /t {
        content_by_lua_block {
            local t_jit = require "t_jit"
            local got = 0
            local aborts, traces = t_jit.nyi_aborts(function()
                local nats = require "resty.nats"
                local n = assert(nats:new())
                assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
                assert(n:subscribe("jit.x", function(m)
                    got = got + #m.payload
                end))
                assert(n:flush())
                for i = 1, 3000 do
                    assert(n:publish("jit.x", "0123456789abcdef"))
                end
                n:set_write_buffer(65536)
                for i = 1, 20000 do
                    n:publish("jit.x", "0123456789abcdef")
                end
                assert(n:wait(23000))
                n:close()
            end)
            ngx.say("received: ", got == 23000 * 16)
            ngx.say("traces in resty.nats: ", traces > 0)
            t_jit.say(aborts)
        }
    }
--- request
GET /t
--- response_body
received: true
traces in resty.nats: true
NYI aborts in resty.nats: 0
--- no_error_log
[error]



=== TEST 2: the pooled request path (connect from the pool, synchronous request, set_keepalive) compiles
--- http_config
    lua_package_path "$TEST_NGINX_LUA_PACKAGE_PATH";
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local opts = { name = "jit" .. math.random(1e6) }
            local function one(i)
                local n = assert(nats:new())
                assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT, opts))
                local m = assert(n:request("interop.echo", "x"))
                assert(n:set_keepalive(10000, 4))
                return m.payload == "x"
            end
            assert(one())   -- the first one subscribes the inbox
            local t_jit = require "t_jit"
            local ok = 0
            local aborts = t_jit.nyi_aborts(function()
                for i = 1, 2000 do
                    if one() then ok = ok + 1 end
                end
            end)
            ngx.say("replies: ", ok)
            t_jit.say(aborts)
        }
    }
--- request
GET /t
--- response_body
replies: 2000
NYI aborts in resty.nats: 0
--- no_error_log
[error]



=== TEST 3: publishing and requests through a shared connection compile
--- http_config
    lua_package_path "$TEST_NGINX_LUA_PACKAGE_PATH";
    init_worker_by_lua_block {
        assert(require("resty.nats").shared("jit", {
            port = $TEST_NGINX_NATS_PORT }))
    }
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("t_shared").connected("jit")
            assert(conn:request("interop.echo", "warm"))
            local t_jit = require "t_jit"
            local ok = 0
            local aborts = t_jit.nyi_aborts(function()
                for i = 1, 50000 do
                    assert(conn:publish("jit.shared", "0123456789abcdef"))
                end
                for i = 1, 2000 do
                    local m = conn:request("interop.echo", "x")
                    if m and m.payload == "x" then ok = ok + 1 end
                end
            end)
            ngx.say("replies: ", ok)
            t_jit.say(aborts)
        }
    }
--- request
GET /t
--- response_body
replies: 2000
NYI aborts in resty.nats: 0
--- no_error_log
[error]
