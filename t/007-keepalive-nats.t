# vim:set ft= ts=4 sw=4 et:
# Pooled connections with the patched lua module (patches/): an idle
# pooled NATS connection answers the server's PINGs, consumes +OK, PONG
# and INFO, keeps a partial line for later, and is closed on anything
# else. Needs the patched lua module: the build's ngx_http_lua_module.so,
# or the one compiled into the nginx under test.

use lib 't/lib';
use TestNats;
use MockNats;
use IO::Socket::INET;

if (!patched_lua_module()) {
    my $where = NginxInfo::is_builtin('ngx_http_lua_module')
        ? "compiled into " . NginxInfo::binary()
        : "in $TestNats::ModulesDir";
    plan skip_all => "the lua module $where has no setkeepalive_nats "
                     . "(patches/; -DRESTY_NATS_PATCHED_LUA=ON)";
}

my $port = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                 LocalPort => 0)->sockport;
my $long_info = 'INFO {"server_id":"' . ('x' x 5000) . '"}' . "\r\n";
our $Mock = MockNats->start($port, {
    ping_whole  => [[sleep => 0.5], [send => "PING\r\n"],
                    [expect => "PONG\r\n", 2]],
    ping_split2 => [[sleep => 0.5], [send => "PI"], [sleep => 0.3],
                    [send => "NG\r\n"], [expect => "PONG\r\n", 2]],
    ping_split3 => [[sleep => 0.5], [send => "P"], [sleep => 0.3],
                    [send => "in"], [sleep => 0.3], [send => "g\r"],
                    [sleep => 0.3], [send => "\n"],
                    [expect => "PONG\r\n", 2]],
    batch       => [[sleep => 0.5],
                    [send => "+OK\r\nPONG\r\nINFO {\"server_id\":\"Y\","
                             . "\"proto\":1}\r\nPING\r\n+OK\r\nping\r\n"],
                    [expect => "PONG\r\nPONG\r\n", 2]],
    err         => [[sleep => 0.5],
                    [send => "-ERR 'Unknown Protocol Operation'\r\n"],
                    [expect_eof => 2]],
    msg         => [[sleep => 0.5], [send => "MSG echo 1 2\r\nhi\r\n"],
                    [expect_eof => 2]],
    garbage     => [[sleep => 0.5], [send => "HTTP/1.1 200 OK\r\n"],
                    [expect_eof => 2]],
    long_line   => [[sleep => 0.5], [send => $long_info],
                    [expect_eof => 2]],
    eof         => [[sleep => 0.5], [close => 1]],
});
$ENV{TEST_NGINX_MOCK_PORT} = $port;
$ENV{TEST_NGINX_MOCK_DIR} = $Mock->dir;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    my $name = $block->scenario;
    return unless defined $name;
    chomp $name;
    $block->set_value("timeout", 10);
    $block->set_value("config", <<CONF);
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local name = "$name"
            local opts = { name = name, pool = "mock-" .. name }
            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", \$TEST_NGINX_MOCK_PORT, opts))
            ngx.say("pooled: ", n:set_keepalive(60000, 4))
            -- the mock acts on the idle pooled connection meanwhile
            ngx.sleep(2.5)
            local m = assert(nats:new())
            m:set_timeout(3000)
            assert(m:connect("127.0.0.1", \$TEST_NGINX_MOCK_PORT, opts))
            ngx.say("reused: ", m:get_reused_times())
            local got
            assert(m:subscribe("echo", function(msg) got = msg.payload end))
            assert(m:publish("echo", "clean"))
            local ok, err = m:wait(1)
            ngx.say("wait: ", ok, " ", err, " got: ", got)
            m:close()
            ngx.sleep(0.2)
            local f = assert(io.open("\$TEST_NGINX_MOCK_DIR/" .. name .. ".log"))
            ngx.say("mock: ", (f:read("*a"):gsub("\\n", ",")))
            f:close()
        }
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: a pooled connection to a server that PINGs every second stays alive for 3.5 s, is reused, works, and is the same client connection
--- timeout: 15
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"

            local function connz(name)
                local s = ngx.socket.tcp()
                assert(s:connect("127.0.0.1", $TEST_NGINX_NATS_PING_MONITOR_PORT))
                assert(s:send("GET /connz?limit=1024 HTTP/1.0\r\nHost: x\r\n\r\n"))
                local body = assert(s:receive("*a"))
                s:close()
                local cids = {}
                for cid in body:gmatch('"cid":%s*(%d+),[^{}]-"name":%s*"' .. name .. '"') do
                    cids[#cids + 1] = cid
                end
                return table.concat(cids, ",")
            end

            local name = "pooled" .. ngx.worker.pid() .. math.random(1e6)
            local opts = { name = name, pool = name }
            local n = assert(nats:new())
            n:set_timeout(2000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PING_PORT, opts))
            ngx.say("pooled: ", n:set_keepalive(60000, 4))
            local before = connz(name)

            ngx.sleep(3.5)

            n = assert(nats:new())
            n:set_timeout(2000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PING_PORT, opts))
            ngx.say("reused: ", n:get_reused_times())
            local got
            local sid = assert(n:subscribe("ka.self", function(m)
                got = m.payload
            end))
            assert(n:publish("ka.self", "still here"))
            assert(n:wait(1))
            assert(n:unsubscribe(sid))
            ngx.say("got: ", got)
            local after = connz(name)
            ngx.say("same connection: ", before ~= "" and before == after,
                    " (", #before > 0 and 1 or 0, " cid)")
            ngx.say("pooled again: ", n:set_keepalive(60000, 4))

            local f = assert(io.open("$TEST_NGINX_NATS_PING_LOG"))
            local log = f:read("*a")
            f:close()
            ngx.say("stale in server log: ", log:find("Stale Connection", 1, true) ~= nil)
        }
    }
--- request
GET /t
--- response_body
pooled: 1
reused: 1
got: still here
same connection: true (1 cid)
pooled again: 1
stale in server log: false
--- no_error_log
[error]



=== TEST 2: a whole PING to an idle pooled connection gets a PONG; the connection is reused, byte-clean
--- scenario: ping_whole
--- request
GET /t
--- response_body
pooled: 1
reused: 1
wait: true nil got: clean
mock: handshake 1,step-ok,echo,
--- no_error_log
[error]



=== TEST 3: a PING split in two pieces
--- scenario: ping_split2
--- request
GET /t
--- response_body
pooled: 1
reused: 1
wait: true nil got: clean
mock: handshake 1,step-ok,echo,
--- no_error_log
[error]



=== TEST 4: a PING split in three pieces (and in lower case)
--- scenario: ping_split3
--- request
GET /t
--- response_body
pooled: 1
reused: 1
wait: true nil got: clean
mock: handshake 1,step-ok,echo,
--- no_error_log
[error]



=== TEST 5: a batch of +OK, PONG, INFO and two PINGs in one segment: two PONGs, nothing else
--- scenario: batch
--- request
GET /t
--- response_body
pooled: 1
reused: 1
wait: true nil got: clean
mock: handshake 1,step-ok,echo,
--- no_error_log
[error]



=== TEST 6: -ERR to an idle pooled connection closes it; the next connect gets a new one
--- scenario: err
--- request
GET /t
--- response_body
pooled: 1
reused: 0
wait: true nil got: clean
mock: handshake 1,eof,handshake 2,echo,
--- no_error_log
[error]



=== TEST 7: a MSG to an idle pooled connection closes it
--- scenario: msg
--- request
GET /t
--- response_body
pooled: 1
reused: 0
wait: true nil got: clean
mock: handshake 1,eof,handshake 2,echo,
--- no_error_log
[error]



=== TEST 8: garbage closes it
--- scenario: garbage
--- request
GET /t
--- response_body
pooled: 1
reused: 0
wait: true nil got: clean
mock: handshake 1,eof,handshake 2,echo,
--- no_error_log
[error]



=== TEST 9: a 5000-byte line closes it
--- scenario: long_line
--- request
GET /t
--- response_body
pooled: 1
reused: 0
wait: true nil got: clean
mock: handshake 1,eof,handshake 2,echo,
--- no_error_log
[error]



=== TEST 10: the server closing an idle pooled connection (EOF) removes it from the pool
--- scenario: eof
--- request
GET /t
--- response_body
pooled: 1
reused: 0
wait: true nil got: clean
mock: handshake 1,handshake 2,echo,
--- no_error_log
[error]



=== TEST 11: a subscription left on the connection makes set_keepalive refuse
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PING_PORT))
            assert(n:subscribe("ka.left", function() end))
            ngx.say(n:set_keepalive(60000, 4))
            n:close()
        }
    }
--- request
GET /t
--- response_body
nilsubscribed state
--- no_error_log
[error]
