# vim:set ft= ts=4 sw=4 et:
# Direct Get (ADR-31) against a nats-server of the suite's own with
# JetStream on: js:get_msg(stream, query, { direct = true }) gives what
# the JSON API gives (by sequence, last and next on a subject, missing,
# the stored headers), on both kinds of connection; key-value reads go
# through it: a user whose permissions deny $JS.API.STREAM.MSG.GET.>
# (the JSON API) still reads keys and revisions, and is refused the
# JSON API itself (so the reads cannot have used it).

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'direct',
    conf => NatsServer::js_conf(file => '64MB', extra => <<'CONF'));
authorization {
    users: [
        { user: "admin", password: "a" },
        { user: "reader", password: "r",
          permissions: {
              publish: { allow: ["$JS.API.>", "_INBOX.>"],
                         deny: ["$JS.API.STREAM.MSG.GET.>"] },
              subscribe: { allow: ["_INBOX.>"] } } }
    ]
}
CONF
$ENV{TEST_NGINX_JS_PORT} = $js->port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t029 = {}
        -- a per-request object's JetStream, as user (admin or reader)
        function t029.js(user, timeout)
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_JS_PORT, {
                user = user, pass = user == "admin" and "a" or "r" }))
            return assert(n:jetstream({ timeout = timeout })), n
        end
        -- a message as one line: subject seq payload headers time?
        function t029.show(m, err, code)
            if not m then
                return "nil " .. tostring(err) .. " " .. tostring(code)
            end
            local hs = {}
            for k, v in pairs(m.headers or {}) do
                hs[#hs + 1] = k .. "=" .. tostring(v)
            end
            table.sort(hs)
            return table.concat({ m.subject, m.seq, m.payload,
                                  "[" .. table.concat(hs, ",") .. "]",
                                  type(m.time) }, " ")
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("admin", { port = $TEST_NGINX_JS_PORT,
                                      user = "admin", pass = "a" }))
        assert(nats.shared("reader", { port = $TEST_NGINX_JS_PORT,
                                       user = "reader", pass = "r" }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: get_msg with direct = true gives what the JSON API gives: by sequence, last and next on a subject, missing; both kinds of connection
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t029.js("admin")
            js:delete_stream("DG")
            assert(js:add_stream({ name = "DG", subjects = { "dg.>" },
                                   storage = "memory", allow_direct = true }))
            assert(js:publish("dg.a", "one"))
            assert(js:publish("dg.b", "two", { headers = { ["X-K"] = "v" } }))
            assert(js:publish("dg.a", "three"))
            assert(js:publish("dg.b", "four"))
            local queries = {
                { seq = 2 }, { last_by_subj = "dg.a" },
                { next_by_subj = "dg.b", seq = 3 }, { next_by_subj = "dg.a", seq = 1 },
                { seq = 99 }, { last_by_subj = "dg.none" },
            }
            local conn = require("resty.nats").shared("admin")
            local sjs = assert(conn:jetstream())
            for _, q in ipairs(queries) do
                local api = t029.show(js:get_msg("DG", q))
                local direct = t029.show(js:get_msg("DG", q, { direct = true }))
                local shared = t029.show(sjs:get_msg("DG", q, { direct = true }))
                ngx.say(direct, direct == api and " (= api)" or " (api: " .. api .. ")",
                        shared == direct and " (= shared)" or " (shared: " .. shared .. ")")
            end
            -- one stored message seen both ways: the same time stamp
            local a = js:get_msg("DG", { seq = 1 })
            local d = js:get_msg("DG", { seq = 1 }, { direct = true })
            ngx.say("time: ", a.time == d.time, " ", d.time:match("^%d+%-%d+%-%d+T") ~= nil)
            -- queries that make no sense are programmer errors
            for _, q in ipairs({ {}, { last_by_subj = "dg.a", seq = 1 },
                                 { next_by_subj = "dg.a" }, { seq = -1 },
                                 { last_by_subj = "dg a" } }) do
                local ok, err = pcall(js.get_msg, js, "DG", q, { direct = true })
                ngx.say("bad query: ", ok, " ", (err:gsub("^.-: ", "")))
            end
            js:delete_stream("DG")
            n:close()
        }
    }
--- response_body
dg.b 2 two [X-K=v] string (= api) (= shared)
dg.a 3 three [] string (= api) (= shared)
dg.b 4 four [] string (= api) (= shared)
dg.a 1 one [] string (= api) (= shared)
nil no message found 10037 (= api) (= shared)
nil no message found 10037 (= api) (= shared)
time: true true
bad query: false bad argument #2 to 'get_msg' (seq, last_by_subj or next_by_subj with seq expected)
bad query: false bad argument #2 to 'get_msg' (last_by_subj goes alone)
bad query: false bad argument #2 to 'get_msg' (seq, last_by_subj or next_by_subj with seq expected)
bad query: false bad 'seq' to 'get_msg' (a sequence number expected)
bad query: false bad 'last_by_subj' to 'get_msg' (a subject expected)
--- no_error_log
[error]



=== TEST 2: key-value reads go through Direct Get: a user denied the JSON API's STREAM.MSG.GET still reads keys and revisions (both kinds of connection), and is refused the JSON API
--- config
    location = /t {
        content_by_lua_block {
            local ajs, an = t029.js("admin")
            ajs:delete_key_value("perm")
            local kv = assert(ajs:create_key_value({ bucket = "perm", history = 3,
                                                     storage = "memory" }))
            local r1 = assert(kv:put("color", "red"))
            assert(kv:put("color", "blue"))
            assert(kv:put("size", "L"))
            assert(kv:delete("size"))

            local rjs, rn = t029.js("reader", 1000)
            local conn = require("resty.nats").shared("reader")
            for _, side in ipairs({ { "per-request", rjs },
                                    { "shared", assert(conn:jetstream({ timeout = 1000 })) } }) do
                local rkv = assert(side[2]:key_value("perm"))
                local e = rkv:get("color")
                ngx.say(side[1], ": color ", e and e.value, " rev ", e and e.revision)
                e = rkv:get("color", { revision = r1 })
                ngx.say(side[1], ": color at ", r1, " ", e and e.value)
                ngx.say(side[1], ": deleted size ", rkv:get("size"))
                ngx.say(side[1], ": missing ", rkv:get("nope"))
                -- the JSON API is denied to this user (a per-request
                -- object reads the server's -ERR; the shared connection
                -- logs it and the request times out)
                local m, err = side[2]:get_msg("KV_perm", { last_by_subj = "$KV.perm.color" })
                ngx.say(side[1], ": JSON API ", m, " ", err)
            end
            ajs:delete_key_value("perm")
            an:close()
            rn:close()
        }
    }
--- response_body
per-request: color blue rev 2
per-request: color at 1 red
per-request: deleted size nilkey not found
per-request: missing nilkey not found
per-request: JSON API nil Permissions Violation for Publish to "$JS.API.STREAM.MSG.GET.KV_perm"
shared: color blue rev 2
shared: color at 1 red
shared: deleted size nilkey not found
shared: missing nilkey not found
shared: JSON API nil timeout
--- error_log eval
qr/Permissions Violation for Publish to "?\$JS\.API\.STREAM\.MSG\.GET\.KV_perm/
