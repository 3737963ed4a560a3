# vim:set ft= ts=4 sw=4 et:
# Hostile servers (t/lib/HostileNats.pm: scripted, one port a scenario):
# silence, a non-NATS greeting, a dribbling server, truncated and
# oversized frames, bad size fields, a 1 MB line without a newline, -ERR
# and EOF in the middle of a wait. Every call returns within its timeout
# with an error naming the problem, the connection is closed and never
# pooled, and the worker never crashes.

use lib 't/lib';
use TestNats;
use HostileNats;

my $mb = 1024 * 1024;
HostileNats->start({
    no_info        => [],
    http_greeting  => [[send => "HTTP/1.1 400 Bad Request\r\n"
                                . "Content-Length: 0\r\n\r\n"]],
    info_dribble   => [[dribble => $HostileNats::Info, 0.1]],
    info_no_eol    => [[send => 'INFO {"server_id":"' . ('x' x $mb)]],
    truncated_msg  => [['handshake'], [sleep => 0.2],
                       [send => "MSG mock 1 10\r\nabc"], ['close']],
    size_minus_one => [['handshake'], [sleep => 0.2],
                       [send => "MSG mock 1 -1\r\n"]],
    size_huge      => [['handshake'], [sleep => 0.2],
                       [send => "MSG mock 1 99999999999999999999\r\n"]],
    size_text      => [['handshake'], [sleep => 0.2],
                       [send => "MSG mock 1 ten\r\n"]],
    short_payload  => [['handshake'], [sleep => 0.2],
                       [send => "MSG mock 1 100\r\nonly 18 bytes here\r\n"],
                       ['close']],
    line_1mb       => [['handshake'], [sleep => 0.2],
                       [send => 'MSG mock 1 ' . ('x' x $mb)]],
    dribble_msg    => [['handshake'],
                       [dribble => "MSG mock 1 5\r\nhello\r\n", 0.1]],
    err_mid_wait   => [['handshake'], [sleep => 0.3],
                       [send => "-ERR 'Stale Connection'\r\n"]],
    eof_mid_wait   => [['handshake'], [sleep => 0.3], ['close']],
    binary_garbage => [['handshake'], [sleep => 0.2],
                       [send => "\x00\xff\xfe garbage\r\n"]],
});

add_block_preprocessor(sub {
    my $block = shift;
    my $name = $block->scenario;
    return unless defined $name;
    chomp $name;
    my $port = '$TEST_NGINX_HOSTILE_' . uc $name;
    $block->set_value("request", "GET /t");
    $block->set_value("timeout", 15);
    $block->set_value("config", <<CONF);
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeouts(1000, 1000, 1000)
            ngx.update_time()
            local t0 = ngx.now()
            local ok, err = n:connect("127.0.0.1", $port)
            ngx.say("connect: ", ok, " ", err)
            if ok then
                local got = {}
                local sid = assert(n:subscribe("mock", function(m)
                    got[#got + 1] = m.payload
                end))
                ok, err = n:wait(1)
                ngx.say("wait: ", ok, " ", err)
                ngx.say("got: ", table.concat(got, ","))
                n:unsubscribe(sid)
            end
            ngx.update_time()
            -- the 1 s read timeout bounds every call; 1.5 s of slack
            ngx.say("returned in time: ", ngx.now() - t0 < 2.5)
            ok, err = n:set_keepalive()
            ngx.say("pooled: ", ok, " ", err)
            ok, err = n:publish("x", "y")
            ngx.say("publish after: ", ok, " ", err)
        }
    }
CONF
});

repeat_each(1);
plan tests => plan_tests();
no_long_string();
run_tests();

__DATA__

=== TEST 1: no INFO at all: connect times out
--- scenario: no_info
--- response_body
connect: false timeout
returned in time: true
pooled: nil closed
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 2: an HTTP server: connect fails with a protocol error
--- scenario: http_greeting
--- response_body
connect: false protocol error: unknown protocol operation
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]



=== TEST 3: the INFO line dribbles in a byte every 100 ms: connect gives up at its read timeout
--- scenario: info_dribble
--- response_body
connect: false timeout
returned in time: true
pooled: nil closed
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 4: an INFO line of 1 MB without a newline: connect fails with a protocol error
--- scenario: info_no_eol
--- response_body
connect: false protocol error: INFO line too long (over 1048576 bytes)
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]



=== TEST 5: a MSG cut short by EOF: wait returns the close
--- scenario: truncated_msg
--- response_body
connect: true nil
wait: false closed
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 6: a size field of -1: protocol error
--- scenario: size_minus_one
--- response_body
connect: true nil
wait: false protocol error: invalid payload size in MSG
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]



=== TEST 7: a size field of 99999999999999999999: protocol error
--- scenario: size_huge
--- response_body
connect: true nil
wait: false protocol error: invalid payload size in MSG
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]



=== TEST 8: a size field that is text: protocol error
--- scenario: size_text
--- response_body
connect: true nil
wait: false protocol error: invalid payload size in MSG
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]



=== TEST 9: a payload shorter than announced, then EOF
--- scenario: short_payload
--- response_body
connect: true nil
wait: false closed
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 10: a control line of 1 MB with no newline: protocol error at the line limit
--- scenario: line_1mb
--- response_body
connect: true nil
wait: false protocol error: control line too long (over 4096 bytes)
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]



=== TEST 11: a message dribbling in a byte every 100 ms: wait times out on time; the half-read connection is not pooled
--- scenario: dribble_msg
--- response_body
connect: true nil
wait: false timeout
got: 
returned in time: true
pooled: nil unread data
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 12: -ERR in the middle of a wait: returned, the connection closed
--- scenario: err_mid_wait
--- response_body
connect: true nil
wait: false Stale Connection
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 13: EOF in the middle of a wait
--- scenario: eof_mid_wait
--- response_body
connect: true nil
wait: false closed
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- no_error_log
exited on signal
[alert]



=== TEST 14: binary garbage: protocol error
--- scenario: binary_garbage
--- response_body
connect: true nil
wait: false protocol error: unknown protocol operation
got: 
returned in time: true
pooled: nil closed
publish after: false not connected
--- error_log
nats: protocol error
--- no_error_log
exited on signal
[alert]
