# vim:set ft= ts=4 sw=4 et:
# Timeouts set only the nginx way: lua_socket_connect_timeout,
# lua_socket_send_timeout and lua_socket_read_timeout in nginx.conf, no
# set_timeout(s) and no timeout options. Every call against a server that
# misbehaves (t/lib/HostileNats.pm) returns within about those values with
# a named error; explicit timeouts still win; and the values the library
# reads are the location's (also in a timer, also inherited from the
# server block).
#
# Each hostile block prints "took: <seconds>" (one decimal) and matches it
# against the configured timeout: a correctness bound (a call that ignored
# nginx.conf took 60 s before), not a speed assertion.

use lib 't/lib';
use TestNats;
use HostileNats;

HostileNats->start({
    silent        => [],
    client_first  => [[await_client => 30], [send => $HostileNats::Info]],
    http_greeting => [[send => "HTTP/1.1 400 Bad Request\r\n"
                               . "Content-Length: 0\r\n\r\n"]],
    info_dribble  => [[dribble => $HostileNats::Info, 0.1]],
    mute_after    => [['handshake']],
});

# --- scenario: the hostile server's port in PORT
# --- code: the handler's Lua, with took(label) printing the time since the
#           start of the handler; the directives below unless --- timeouts
add_block_preprocessor(sub {
    my $block = shift;
    my $code = $block->code;
    return unless defined $code;
    my $port = 'nil';
    if (defined $block->scenario) {
        my $name = $block->scenario;
        chomp $name;
        $port = '$TEST_NGINX_HOSTILE_' . uc $name;
    }
    my $timeouts = $block->timeouts;
    $timeouts = <<'DIR' unless defined $timeouts;
        lua_socket_connect_timeout 1s;
        lua_socket_send_timeout 1s;
        lua_socket_read_timeout 1s;
DIR
    $block->set_value("request", "GET /t") unless defined $block->request;
    $block->set_value("timeout", 20);
    $block->set_value("config", <<CONF);
    location = /t {
$timeouts
        content_by_lua_block {
            local nats = require "resty.nats"
            local PORT = $port
            ngx.update_time()
            local t0 = ngx.now()
            local function took(label)
                ngx.update_time()
                local s = string.format("%.1f", ngx.now() - t0)
                ngx.log(ngx.INFO, "timeouts: ", label, " took ", s, " s")
                ngx.say("took: ", s)
                ngx.update_time()
                t0 = ngx.now()
            end
$code
        }
    }
CONF
});

repeat_each(1);
plan tests => plan_tests();
no_long_string();
run_tests();

__DATA__

=== TEST 1: the library reads the location's lua_socket_*_timeout
--- timeouts
        lua_socket_connect_timeout 1234ms;
        lua_socket_send_timeout 2345ms;
        lua_socket_read_timeout 3456ms;
--- code
            ngx.say(table.concat({ nats._location_timeouts() }, " "))
--- response_body
1234 2345 3456
--- no_error_log
[alert]
exited on signal



=== TEST 2: nothing configured: lua-nginx-module's defaults (60 s)
--- timeouts
--- code
            ngx.say(table.concat({ nats._location_timeouts() }, " "))
--- response_body
60000 60000 60000
--- no_error_log
[alert]
exited on signal



=== TEST 3: values inherited from the server block, and seen by a timer created in the location
--- http_config
    lua_socket_read_timeout 777ms;
--- config
    lua_socket_send_timeout 888ms;
    location = /t {
        lua_socket_connect_timeout 999ms;
        content_by_lua_block {
            local nats = require "resty.nats"
            ngx.say("handler: ",
                    table.concat({ nats._location_timeouts() }, " "))
            local got
            local ok = ngx.timer.at(0, function()
                got = table.concat({ nats._location_timeouts() }, " ")
            end)
            for _ = 1, 100 do
                if got then break end
                ngx.sleep(0.01)
            end
            ngx.say("timer: ", got)
        }
    }
--- request
GET /t
--- response_body
handler: 999 888 777
timer: 999 888 777
--- no_error_log
[alert]
exited on signal



=== TEST 4: a silent server: connect times out at lua_socket_read_timeout
--- scenario: silent
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", PORT)
            ngx.say("connect: ", ok, " ", err)
            took("silent server: connect")
--- response_body_like
^connect: false timeout
took: 1\.[0-4]
--- no_error_log
[alert]
exited on signal



=== TEST 5: a server that waits for the client to speak first: connect times out
--- scenario: client_first
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", PORT)
            ngx.say("connect: ", ok, " ", err)
            took("client-first server: connect")
--- response_body_like
^connect: false timeout
took: 1\.[0-4]
--- no_error_log
[alert]
exited on signal



=== TEST 6: an HTTP greeting: a protocol error at once
--- scenario: http_greeting
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", PORT)
            ngx.say("connect: ", ok, " ", err)
            took("HTTP greeting: connect")
--- response_body_like
^connect: false protocol error: unknown protocol operation
took: 0\.[0-4]
--- error_log
nats: protocol error



=== TEST 7: an INFO dribbled a byte every 100 ms: connect gives up at lua_socket_read_timeout for the whole handshake
--- scenario: info_dribble
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", PORT)
            ngx.say("connect: ", ok, " ", err)
            took("dribbled INFO: connect")
--- response_body_like
^connect: false timeout
took: 1\.[0-4]
--- no_error_log
[alert]
exited on signal



=== TEST 8: a server mute after the handshake: wait, flush, request and close each end at lua_socket_read_timeout
--- scenario: mute_after
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", PORT)
            ngx.say("connect: ", ok, " ", err)
            took("mute server: connect")
            assert(n:subscribe("mock", function() end))
            ok, err = n:wait(1)
            ngx.say("wait: ", ok, " ", err)
            took("mute server: wait")
            ok, err = n:flush()
            ngx.say("flush: ", ok, " ", err)
            took("mute server: flush")
            local msg
            msg, err = n:request("svc", "x")
            ngx.say("request: ", msg, " ", err)
            took("mute server: request")
            assert(n:publish("x", "y"))
            ok, err = n:close()
            ngx.say("close: ", ok, " ", err)
            took("mute server: close (settle)")
--- response_body_like
^connect: true nil
took: 0\.[0-4]
wait: false timeout
took: 1\.[0-4]
flush: false timeout
took: 1\.[0-4]
request: nil timeout
took: 1\.[0-4]
close: 1 nil
took: 1\.[0-4]
--- no_error_log
[alert]
exited on signal



=== TEST 9: a connect timeout option alone keeps nginx.conf's read timeout for the handshake
--- scenario: silent
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", PORT,
                                      { connect_timeout = 5000 })
            ngx.say("connect: ", ok, " ", err)
            took("silent server: connect with connect_timeout only")
--- response_body_like
^connect: false timeout
took: 1\.[0-4]
--- no_error_log
[alert]
exited on signal



=== TEST 10: explicit timeouts win over nginx.conf (2 s set, 1 s configured)
--- scenario: silent
--- code
            local n = assert(nats:new())
            n:set_timeouts(2000, 2000, 2000)
            local ok, err = n:connect("127.0.0.1", PORT)
            ngx.say("connect: ", ok, " ", err)
            took("silent server: connect after set_timeouts(2000)")
            n = assert(nats:new())
            ok, err = n:connect("127.0.0.1", PORT, { read_timeout = 1500 })
            ngx.say("connect: ", ok, " ", err)
            took("silent server: connect with read_timeout = 1500")
--- response_body_like
^connect: false timeout
took: 2\.[0-4]
connect: false timeout
took: 1\.[5-9]
--- no_error_log
[alert]
exited on signal



=== TEST 11: a timer created in the location: its connect uses the location's timeouts
--- scenario: silent
--- code
            local res
            local ok = ngx.timer.at(0, function()
                local n = assert(nats:new())
                local ok, err = n:connect("127.0.0.1", PORT)
                res = tostring(ok) .. " " .. tostring(err)
            end)
            for _ = 1, 500 do
                if res then break end
                ngx.sleep(0.01)
            end
            ngx.say("timer connect: ", res)
            took("silent server: connect in a timer")
--- response_body_like
^timer connect: false timeout
took: 1\.[0-4]
--- no_error_log
[alert]
exited on signal



=== TEST 12: a real server: wait and request (no responder answers) use lua_socket_read_timeout; the request default is capped at it
--- code
            local n = assert(nats:new())
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT)
            ngx.say("connect: ", ok, " ", err)
            took("nats-server: connect")
            local sub = "t018." .. ngx.worker.pid() .. "." .. ngx.now()
            assert(n:subscribe(sub, function() end))
            ok, err = n:wait(1)
            ngx.say("wait: ", ok, " ", err)
            took("nats-server: wait")
            -- a subscriber that never answers: no 503, so a timeout
            local msg
            msg, err = n:request(sub, "ping")
            ngx.say("request: ", msg, " ", err)
            took("nats-server: request, no timeout given")
            ok, err = n:flush()
            ngx.say("flush: ", ok, " ", err)
            n:close()
--- response_body_like
^connect: true nil
took: 0\.[0-4]
wait: false timeout
took: 1\.[0-4]
request: nil timeout
took: 1\.[0-4]
flush: true nil
--- no_error_log
[alert]
exited on signal



=== TEST 13: lua_socket_pool_size is what set_keepalive caps the pool at when neither call says
--- timeouts
        lua_socket_pool_size 2;
--- code
            ngx.say("pool size: ", nats._location_pool_size())
            local pool = "t018-pool-" .. ngx.now()
            local objs = {}
            for i = 1, 3 do
                objs[i] = assert(nats:new())
                assert(objs[i]:connect("127.0.0.1", $TEST_NGINX_NATS_PORT,
                                       { pool = pool }))
            end
            for i = 1, 3 do
                assert(objs[i]:set_keepalive())
            end
            local reused = 0
            for i = 1, 3 do
                objs[i] = assert(nats:new())
                assert(objs[i]:connect("127.0.0.1", $TEST_NGINX_NATS_PORT,
                                       { pool = pool }))
                if objs[i]:get_reused_times() > 0 then
                    reused = reused + 1
                end
            end
            ngx.say("reused: ", reused)
            for i = 1, 3 do
                objs[i]:close()
            end
--- response_body
pool size: 2
reused: 2
--- no_error_log
[error]



=== TEST 14: nothing configured: lua-nginx-module's default pool size (30)
--- timeouts
--- code
            ngx.say("pool size: ", nats._location_pool_size())
--- response_body
pool size: 30
--- no_error_log
[error]
