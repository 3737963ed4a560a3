# vim:set ft= ts=4 sw=4 et:
# sock:send_nats_buf(buf, len), which the patch in patches/ adds to
# lua-nginx-module's cosockets: the first len bytes of an FFI array, copied
# at the call (the array is free again when it returns), against the
# suite's nats-server; its argument checks; and that the shared
# connection's writer, a per-request object's write buffer and its
# unbuffered publishes send through it when the lua module has it (the
# messages: t/lua/t_mixed.lua, which t/026 sends with a stock lua module).
# Skipped with a stock lua module.

use lib 't/lib';
use TestNats;

if (!patched_lua_module()) {
    plan skip_all => "the lua module under test has no send_nats_buf "
                   . "(not built with patches/)";
}

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 20);
    $block->set_value("request", "GET /t") unless defined $block->request;
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t025 = {}
        -- a raw cosocket connected to the suite's nats-server
        function t025.sock()
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            return sock
        end
        -- counts the calls of send_nats_buf, of every cosocket of the worker
        t025.calls = 0
        function t025.count_calls()
            local methods = getmetatable(ngx.socket.tcp())
            local index = methods.__index
            if t025.orig then return end
            t025.orig = index.send_nats_buf
            index.send_nats_buf = function(...)
                t025.calls = t025.calls + 1
                return t025.orig(...)
            end
        end
    }
    init_worker_by_lua_block {
        require("t_mixed").start_shared("t025", $TEST_NGINX_NATS_PORT)
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: the bytes of an FFI array reach nats-server as they are; the array is reused right after the call
--- config
    location = /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local sock = t025.sock()
            local info = assert(sock:receive("*l"))
            ngx.say("info: ", info:sub(1, 5))
            local buf = ffi.new("char[?]", 256)
            local s = 'CONNECT {"verbose":false}\r\nSUB t025.raw 1\r\n'
                      .. "PUB t025.raw 5\r\nhello\r\nPING\r\n"
            ffi.copy(buf, s, #s)
            local n, err = sock:send_nats_buf(buf, #s)
            ngx.say("sent: ", n == #s, " ", err)
            -- overwritten at once: what was sent was copied at the call
            s = "PUB t025.raw 3\r\nbye\r\nPING\r\n"
            ffi.fill(buf, 256, 88)
            ffi.copy(buf, s, #s)
            n, err = sock:send_nats_buf(buf, #s)
            ngx.say("sent again: ", n == #s, " ", err)
            for _ = 1, 6 do
                ngx.say(assert(sock:receive("*l")))
            end
            ngx.say("nothing: ", sock:send_nats_buf(buf, 0))
            sock:close()
            ngx.say("closed: ", select(2, sock:send_nats_buf(buf, 3)))
        }
    }
--- response_body
info: INFO 
sent: true nil
sent again: true nil
MSG t025.raw 1 5
hello
PONG
MSG t025.raw 1 3
bye
PONG
nothing: 0
closed: closed
--- error_log
attempt to send data on a closed socket



=== TEST 2: its arguments are checked
--- config
    location = /t {
        content_by_lua_block {
            local ffi = require "ffi"
            local sock = t025.sock()
            local buf = ffi.new("char[?]", 8)
            local function try(...)
                local ok, err = pcall(sock.send_nats_buf, sock, ...)
                ngx.say(ok, " ", (tostring(err):gsub("^.-: ", "")))
            end
            try("a string", 3)
            try(buf, -1)
            try(buf, "3")
            try(buf)
            try(nil, 3)
            sock:close()
        }
    }
--- response_body
false bad argument #2 to '?' (cdata expected)
false bad argument #3 to '?' (non-negative number expected)
false bad argument #3 to '?' (non-negative number expected)
false expecting 3 arguments (including the object), but got 2
false bad argument #2 to '?' (cdata expected)
--- no_error_log
[error]



=== TEST 3: the shared connection's writer and a per-request write buffer send through it; every message arrives, in order
--- config
    location = /t {
        content_by_lua_block {
            t025.count_calls()
            local mixed = require "t_mixed"
            local before
            local function ready() before = t025.calls end
            local text = mixed.shared("t025", ready)
            ngx.say("shared: ", text, ", through send_nats_buf: ",
                    t025.calls > before)
            text = mixed.write_buffer("t025", $TEST_NGINX_NATS_PORT, ready)
            ngx.say("write buffer: ", text, ", through send_nats_buf: ",
                    t025.calls > before)
        }
    }
--- response_body
shared: in order, intact: true (2021), through send_nats_buf: true
write buffer: in order, intact: true (500), through send_nats_buf: true
--- no_error_log
[error]


=== TEST 4: per-request unbuffered publish (the whole message framed in the worker's scratch buffer and sent at once, through send_nats_buf): 0 B to 70 KB, with replies and headers, among subscriptions, in order and intact
--- config
    location = /t {
        content_by_lua_block {
            t025.count_calls()
            local before
            ngx.say(require("t_mixed").unbuffered("t025",
                $TEST_NGINX_NATS_PORT, function() before = t025.calls end))
            -- 180 of the 240 fit the scratch buffer (all but 65600, 70000)
            ngx.say("sent from the scratch buffer: ",
                    t025.calls - before >= 180)
        }
    }
--- response_body
in order, intact: true (240)
sent from the scratch buffer: true
--- no_error_log
[error]
