# vim:set ft= ts=4 sw=4 et:
# sock:send_nats_buf(buf, len), which the patch in patches/ adds to
# lua-nginx-module's cosockets: the first len bytes of an FFI array, copied
# at the call (the array is free again when it returns), against the
# suite's nats-server; its argument checks; and that the shared
# connection's writer, a per-request object's write buffer and its
# unbuffered publishes send through it when the lua module has it. Skipped with a stock lua module (t/026
# covers the writer and the write buffer there).

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
        t025 = { got = {} }
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
        local nats = require "resty.nats"
        local conn = assert(nats.shared("main", {
            port = $TEST_NGINX_NATS_PORT, name = "t025-main",
        }))
        assert(conn:subscribe("t025.cb", function(msg)
            t025.got[#t025.got + 1] = msg.payload
        end))
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
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
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
            local sock = ngx.socket.tcp()
            sock:settimeout(3000)
            assert(sock:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
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
            local nats = require "resty.nats"
            local conn = assert(nats.shared("main"))
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local want = {}
            local before = t025.calls
            for i = 1, 2000 do
                local p = string.rep(string.char(65 + i % 26), i % 1500) .. i
                want[i] = p
                assert(conn:publish("t025.cb", p))
            end
            assert(conn:flush())
            for _ = 1, 200 do
                if #t025.got >= #want then break end
                ngx.sleep(0.01)
            end
            local same = #t025.got == #want
            for i = 1, #want do
                if t025.got[i] ~= want[i] then same = false break end
            end
            ngx.say("shared: in order, intact: ", same, " (", #t025.got,
                    "), through send_nats_buf: ", t025.calls > before)

            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(n:set_write_buffer(4096))
            local got = {}
            assert(n:subscribe("t025.wb", function(m) got[#got + 1] = m.payload end))
            before = t025.calls
            for i = 1, 500 do
                assert(n:publish("t025.wb", "m" .. i))
            end
            assert(n:flush())
            while #got < 500 do
                if not n:wait(1) then break end
            end
            local ok = #got == 500
            for i = 1, 500 do
                if got[i] ~= "m" .. i then ok = false break end
            end
            ngx.say("write buffer: in order, intact: ", ok, " (", #got,
                    "), through send_nats_buf: ", t025.calls > before)
            n:close()
        }
    }
--- response_body
shared: in order, intact: true (2000), through send_nats_buf: true
write buffer: in order, intact: true (500), through send_nats_buf: true
--- no_error_log
[error]


=== TEST 4: per-request unbuffered publish (the whole message framed in the worker's scratch buffer and sent at once, through send_nats_buf): 0 B to 70 KB, with replies and headers, among subscriptions, in order and intact
--- config
    location = /t {
        content_by_lua_block {
            t025.count_calls()
            local before = t025.calls
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(n:subscribe("t025.ub", function(m)
                got[#got + 1] = m.payload .. "|" .. (m.reply_to or "") .. "|"
                                .. (m.headers and m.headers["X-I"] or "")
            end))
            local want = {}
            -- 65000 fits the 64 KiB scratch with its control line, 65600
            -- does not (a list of strings then)
            local sizes = { 0, 1, 16, 1024, 65000, 65600, 70000, 3 }
            for i = 1, 240 do
                local p = string.rep(string.char(65 + i % 26),
                                     sizes[i % #sizes + 1]) .. i
                local opts, reply, hdr = nil, "", ""
                if i % 3 == 1 then
                    reply = "t025.r" .. i
                    opts = { reply_to = reply }
                elseif i % 3 == 2 then
                    hdr = tostring(i)
                    opts = { headers = { ["X-I"] = hdr } }
                end
                assert(n:publish("t025.ub", p, opts))
                want[#want + 1] = p .. "|" .. reply .. "|" .. hdr
                if i % 50 == 0 then
                    -- a SUB and an UNSUB among the messages
                    local sid = assert(n:subscribe("t025.other", function() end))
                    assert(n:unsubscribe(sid))
                end
            end
            assert(n:flush())
            while #got < #want do
                if not n:wait(1) then break end
            end
            local same = #got == #want
            for i = 1, #want do
                if got[i] ~= want[i] then
                    same = false
                    ngx.say("message ", i, " differs")
                    break
                end
            end
            ngx.say("in order, intact: ", same, " (", #got, ")")
            -- 180 of the 240 fit the scratch buffer (all but 65600, 70000)
            ngx.say("sent from the scratch buffer: ", t025.calls - before >= 180)
            n:close()
        }
    }
--- response_body
in order, intact: true (240)
sent from the scratch buffer: true
--- no_error_log
[error]

