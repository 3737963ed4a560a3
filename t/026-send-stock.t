# vim:set ft= ts=4 sw=4 et:
# With a stock lua module (no send_nats_buf): the shared connection's
# writer sends strings and lists of strings (payloads of 512 bytes and
# more by reference), a per-request write buffer one string per flush,
# an unbuffered publish one string (or a list of strings when it does not
# fit the scratch buffer); every message arrives intact and in order,
# among SUB/UNSUB frames. The
# stock module is TEST_NGINX_STOCK_LUA_MODULE or
# <modules dir>/stock/ngx_http_lua_module.so (see t/008); skipped when it
# is not built for the nginx under test, or when the lua module is
# compiled into nginx.

use lib 't/lib';
use TestNats;

$TestNats::StockLua = 1;
if (my $why = stock_lua_unavailable()) {
    plan skip_all => $why;
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
        t026 = { got = {} }
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        local conn = assert(nats.shared("main", {
            port = $TEST_NGINX_NATS_PORT, name = "t026-main",
        }))
        assert(conn:subscribe("t026.cb", function(msg)
            t026.got[#t026.got + 1] = msg.payload
        end))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: shared connection: small and large payloads and control frames keep their order, intact
--- config
    location = /t {
        content_by_lua_block {
            ngx.say("send_nats_buf: ", ngx.socket.tcp().send_nats_buf)
            local nats = require "resty.nats"
            local conn = assert(nats.shared("main"))
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local want = {}
            local sizes = { 10, 600, 5000, 1, 511, 512, 70000 }
            for round = 1, 3 do
                for i, n in ipairs(sizes) do
                    local p = string.rep(string.char(64 + i), n) .. round
                    want[#want + 1] = p
                    assert(conn:publish("t026.cb", p))
                    if i == 3 then
                        local sub = assert(conn:subscribe("t026.between"))
                        sub:unsubscribe()
                    end
                end
            end
            for i = 1, 2000 do
                local p = string.rep(string.char(65 + i % 26), i % 1500) .. i
                want[#want + 1] = p
                assert(conn:publish("t026.cb", p))
            end
            assert(conn:flush())
            for _ = 1, 200 do
                if #t026.got >= #want then break end
                ngx.sleep(0.01)
            end
            local same = #t026.got == #want
            for i = 1, #want do
                if t026.got[i] ~= want[i] then same = false break end
            end
            ngx.say("in order, intact: ", same, " (", #t026.got, ")")
            ngx.say("pending after: ", conn:stats().pending_bytes)
        }
    }
--- response_body
send_nats_buf: nil
in order, intact: true (2021)
pending after: 0
--- no_error_log
[error]



=== TEST 2: per-request write buffer: every message arrives, in order
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            assert(n:set_write_buffer(4096))
            local got = {}
            assert(n:subscribe("t026.wb", function(m) got[#got + 1] = m.payload end))
            for i = 1, 500 do
                assert(n:publish("t026.wb", string.rep("w", i % 700) .. i))
            end
            assert(n:flush())
            while #got < 500 do
                if not n:wait(1) then break end
            end
            local ok = #got == 500
            for i = 1, 500 do
                if got[i] ~= string.rep("w", i % 700) .. i then ok = false break end
            end
            ngx.say("in order, intact: ", ok, " (", #got, ")")
            n:close()
        }
    }
--- response_body
in order, intact: true (500)
--- no_error_log
[error]


=== TEST 3: per-request unbuffered publish (the whole message framed in the worker's scratch buffer and sent at once, with the stock send: a Lua string): 0 B to 70 KB, with replies and headers, among subscriptions, in order and intact
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_NATS_PORT))
            local got = {}
            assert(n:subscribe("t026.ub", function(m)
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
                    reply = "t026.r" .. i
                    opts = { reply_to = reply }
                elseif i % 3 == 2 then
                    hdr = tostring(i)
                    opts = { headers = { ["X-I"] = hdr } }
                end
                assert(n:publish("t026.ub", p, opts))
                want[#want + 1] = p .. "|" .. reply .. "|" .. hdr
                if i % 50 == 0 then
                    -- a SUB and an UNSUB among the messages
                    local sid = assert(n:subscribe("t026.other", function() end))
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
            n:close()
        }
    }
--- response_body
in order, intact: true (240)
--- no_error_log
[error]

