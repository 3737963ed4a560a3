# vim:set ft= ts=4 sw=4 et:
# Scripted servers (Test::Nginx's embedded TCP server, which speaks first
# with --- tcp_shutdown: 0): errors, split frames, PINGs, garbage, and a
# server that goes away. Every call returns with an error naming the
# problem; fatal problems close the connection.

use lib 't/lib';
use TestNats;

repeat_each(1);
plan tests => repeat_each() * (3 * blocks());
no_long_string();

our $Info = 'INFO {"server_id":"MOCK","version":"2.9.10","proto":1,'
           . '"headers":true,"max_payload":1048576}' . "\r\n";

add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->config) {
        $block->set_value("config", <<'CONF');
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(1000)
            local ok, err = n:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1)
            ngx.say("connect: ", ok, " ", err)
            if not ok then return end
            local got = {}
            local sid = n:subscribe("mock", function(m)
                got[#got + 1] = m.payload .. (m.status and
                                              (" status " .. m.status) or "")
            end)
            ngx.say("sid: ", sid)
            ok, err = n:wait(1)
            ngx.say("wait: ", ok, " ", err)
            ngx.say("got: ", table.concat(got, ","))
            if not ok then
                ok, err = n:wait(1)
                ngx.say("again: ", ok, " ", err)
                ngx.say("got: ", table.concat(got, ","))
            end
        }
    }
CONF
    }
});

run_tests();

__DATA__

=== TEST 1: a closed port: connect returns false, "connection refused"
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            ngx.say(n:connect("127.0.0.1", $TEST_NGINX_CLOSED_PORT))
        }
    }
--- request
GET /t
--- response_body
falseconnection refused
--- error_log
Connection refused



=== TEST 2: the server goes away in the middle of a wait: an error, and the connection is closed
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(1000)
            ngx.say("connect: ", n:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            local ok, err = n:wait(1)
            ngx.say("wait: ", ok, " ", err)
            ngx.say("publish: ", n:publish("x", "y"))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_reply eval
[$::Info, "PONG\r\n"]
--- request
GET /t
--- response_body_like
connect: true
wait: false (closed|connection reset by peer)
publish: falsenot connected
--- no_error_log
[crit]



=== TEST 3: a fatal -ERR during wait is returned and closes the connection
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n", "-ERR 'Stale Connection'\r\n"]
--- request
GET /t
--- response_body
connect: true nil
sid: 1
wait: false Stale Connection
got: 
again: false not connected
got: 
--- error_log
nats: server error: Stale Connection, closing the connection



=== TEST 4: a non-fatal -ERR (permissions) is returned and the connection stays usable
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n",
 "-ERR 'Permissions Violation for Publish to \"secret\"'\r\n",
 "MSG mock 1 2\r\nhi\r\n"]
--- request
GET /t
--- response_body
connect: true nil
sid: 1
wait: false Permissions Violation for Publish to "secret"
got: 
again: true nil
got: hi
--- no_error_log
[error]



=== TEST 5: frames split anywhere, a PING in between, an op name in lower case
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PO", "NG\r", "\n", "PI", "NG\r\nms", "g  mock\t1 ", "12\r\nhel",
 "lo\r\nworld", "\r", "\n"]
--- request
GET /t
--- response_body eval
"connect: true nil\nsid: 1\nwait: true nil\ngot: hello\r\nworld\n"
--- no_error_log
[error]



=== TEST 6: garbage from the server: a protocol error naming the problem, logged, connection closed
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n", "HTTP/1.1 200 OK\r\n"]
--- request
GET /t
--- response_body_like
connect: true nil
sid: 1
wait: false protocol error: .*unknown protocol operation.*
got: 
again: false not connected
got: 
--- error_log
nats: protocol error



=== TEST 7: a peer that does not speak NATS: connect fails with a protocol error
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
["HTTP/1.1 400 Bad Request\r\n\r\n"]
--- request
GET /t
--- response_body_like
connect: false protocol error: .*unknown protocol operation.*
--- error_log
nats: protocol error



=== TEST 8: an -ERR answering CONNECT becomes connect's error
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "-ERR 'Authorization Violation'\r\n"]
--- request
GET /t
--- response_body
connect: false authorization violation
--- no_error_log
[crit]



=== TEST 9: a message for an unknown sid is dropped quietly; a 503 status message reaches a plain subscription
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n", "MSG mock 99 1\r\na\r\n",
 "HMSG mock 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n"]
--- request
GET /t
--- response_body
connect: true nil
sid: 1
wait: true nil
got:  status 503
--- no_error_log
[error]



=== TEST 10: a size field too large to be a number is a protocol error
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n", "MSG mock 1 99999999999999999999\r\n"]
--- request
GET /t
--- response_body_like
connect: true nil
sid: 1
wait: false protocol error: .+
got: 
again: false not connected
got: 
--- error_log
nats: protocol error



=== TEST 11: the server says nothing: wait returns false, "timeout" within the read timeout
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n"]
--- request
GET /t
--- response_body
connect: true nil
sid: 1
wait: false timeout
got: 
again: false timeout
got: 
--- error_log
lua tcp socket read timed out



=== TEST 12: an asynchronous INFO lowers max_payload: a larger publish is refused before sending
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(1000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_RAND_PORT_1))
            assert(n:subscribe("mock", function() end))
            ngx.say("before: ", n:server_info().max_payload, " ", n:publish("mock", string.rep("x", 20)))
            ngx.say("wait: ", n:wait(1))
            ngx.say("after: ", n:server_info().max_payload, " ", n:publish("mock", string.rep("x", 20)))
            ngx.say("small: ", n:publish("mock", "0123456789"))
            ngx.say("connect_urls: ", table.concat(n:server_info().connect_urls, " "))
        }
    }
--- tcp_listen: $TEST_NGINX_RAND_PORT_1
--- tcp_shutdown: 0
--- tcp_no_close
--- tcp_reply eval
[$::Info, "PONG\r\n",
 qq{INFO {"server_id":"MOCK","proto":1,"headers":true,"max_payload":10,"connect_urls":["10.1.1.1:4222","10.1.1.2:4222"]}\r\n},
 "MSG mock 1 1\r\na\r\n"]
--- request
GET /t
--- response_body
before: 1048576 true
wait: true
after: 10 falsepayload too large (20 > max_payload 10)
small: true
connect_urls: 10.1.1.1:4222 10.1.1.2:4222
--- no_error_log
[error]
