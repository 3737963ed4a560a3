# vim:set ft= ts=4 sw=4 et:
# With a stock lua module (no send_nats_buf): the shared connection's
# writer sends strings and lists of strings (payloads of 512 bytes and
# more by reference), a per-request write buffer one string per flush,
# an unbuffered publish one string (or a list of strings when it does not
# fit the scratch buffer); every message arrives intact and in order,
# among SUB/UNSUB frames (the messages: t/lua/t_mixed.lua, which t/025
# sends through send_nats_buf). The stock module is
# TEST_NGINX_STOCK_LUA_MODULE or <modules dir>/stock/ngx_http_lua_module.so
# (see t/008); skipped when it is not built for the nginx under test, or
# when the lua module is compiled into nginx.

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
    init_worker_by_lua_block {
        require("t_mixed").start_shared("t026", $TEST_NGINX_NATS_PORT)
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
            local text, conn = require("t_mixed").shared("t026")
            ngx.say(text)
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
            ngx.say(require("t_mixed").write_buffer("t026",
                                                    $TEST_NGINX_NATS_PORT))
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
            ngx.say(require("t_mixed").unbuffered("t026",
                                                  $TEST_NGINX_NATS_PORT))
        }
    }
--- response_body
in order, intact: true (240)
--- no_error_log
[error]
