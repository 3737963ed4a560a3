# vim:set ft= ts=4 sw=4 et:
# The fallback with a stock lua module (without setkeepalive_nats):
# set_keepalive uses the plain cosocket pool, where a pooled connection
# lives only until the server's next PING (README, set_keepalive).
# The stock module is TEST_NGINX_STOCK_LUA_MODULE or
# <modules dir>/stock/ngx_http_lua_module.so (the build links the system's
# there); skipped when it is not built for the nginx under test, or when
# the lua module is compiled into nginx.

use lib 't/lib';
use TestNats;
use MockNats;
use IO::Socket::INET;

$TestNats::StockLua = 1;
if (my $why = stock_lua_unavailable()) {
    plan skip_all => $why;
}

my $port = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                 LocalPort => 0)->sockport;
our $Mock = MockNats->start($port, {
    stock_ping => [[sleep => 0.5], [send => "PI"], [sleep => 0.3],
                   [send => "NG\r\n"], [expect => "PONG\r\n", 2]],
});
$ENV{TEST_NGINX_MOCK_PORT} = $port;
$ENV{TEST_NGINX_MOCK_DIR} = $Mock->dir;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();
run_tests();

__DATA__

=== TEST 1: the stock module has no setkeepalive_nats; an immediate reuse works, one after the server's PINGs gets a new connection
--- timeout: 10
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("patched: ", ngx.socket.tcp().setkeepalive_nats ~= nil)
            local nats = require "resty.nats"
            local opts = { pool = "stock" .. math.random(1e6) }
            local function round(label)
                local n = assert(nats:new())
                n:set_timeout(2000)
                assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PING_PORT, opts))
                local reused = n:get_reused_times()
                local got
                local sid = assert(n:subscribe("stock.self", function(m)
                    got = m.payload
                end))
                assert(n:publish("stock.self", label))
                assert(n:wait(1))
                assert(n:unsubscribe(sid))
                ngx.say(label, ": reused ", reused, " got ", got,
                        " pooled ", n:set_keepalive(60000, 4))
            end
            round("first")
            round("at once")
            ngx.sleep(2.5)
            round("after pings")
        }
    }
--- request
GET /t
--- response_body
patched: false
first: reused 0 got first pooled 1
at once: reused 1 got at once pooled 1
after pings: reused 0 got after pings pooled 1
--- no_error_log
[error]



=== TEST 2: the stock pool closes an idle connection at the first byte of a PING (the mock sees EOF, no PONG)
--- timeout: 10
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local opts = { name = "stock_ping", pool = "mock-stock_ping" }
            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_MOCK_PORT, opts))
            ngx.say("pooled: ", n:set_keepalive(60000, 4))
            ngx.sleep(2.5)
            local m = assert(nats:new())
            m:set_timeout(3000)
            assert(m:connect("127.0.0.1", $TEST_NGINX_MOCK_PORT, opts))
            ngx.say("reused: ", m:get_reused_times())
            m:close()
            ngx.sleep(0.2)
            local f = assert(io.open("$TEST_NGINX_MOCK_DIR/stock_ping.log"))
            ngx.say("mock: ", (f:read("*a"):gsub("\n", ",")))
            f:close()
        }
    }
--- request
GET /t
--- response_body
pooled: 1
reused: 0
mock: handshake 1,step-failed expected 6 bytes, got [],handshake 2,
--- no_error_log
[error]
