# vim:set ft= ts=4 sw=4 et:
# JetStream key-value buckets (resty.nats.kv) against a nats-server of the
# suite's own with JetStream on: create/open/delete a bucket, put, get (a
# revision too), create (only when not live), update (only on the last
# revision), delete and purge markers, keys, history, bad keys and
# buckets, and watch through a shared connection (current values first,
# then every change in order; across a server restart that loses the
# watcher's consumer).

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'kv', conf => NatsServer::js_conf());
$ENV{TEST_NGINX_JS_PORT} = $js->port;

# a JetStream server with file storage that the handlers stop and start
my ($restart_port, $ctl_port) = NatsServer->controlled(
    name => 'kv-restart', conf => NatsServer::js_conf(memory => 0));
$ENV{TEST_NGINX_RESTART_PORT} = $restart_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    lua_shared_dict t024 1m;
    init_by_lua_block {
        t024 = { seen = {} }
        function t024.js()
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_JS_PORT))
            return assert(n:jetstream()), n
        end
        function t024.bucket(js, name, cfg)
            js:delete_key_value(name)
            cfg = cfg or {}
            cfg.bucket = name
            cfg.storage = cfg.storage or "memory"
            return assert(js:create_key_value(cfg))
        end
        -- ctl("stop" | "start"): drives the restart server's control process
        function t024.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end
        -- waits up to 10 s for f() to be true
        function t024.wait_for(f)
            for _ = 1, 200 do
                if f() then return true end
                ngx.sleep(0.05)
            end
            return false
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("kv", { port = $TEST_NGINX_JS_PORT }))
        assert(nats.shared("kvr", { port = $TEST_NGINX_RESTART_PORT,
                                    reconnect_wait = 200 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: put, get, update, create, delete, purge, keys, history
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t024.js()
            local kv = t024.bucket(js, "cfg", { history = 5 })
            ngx.say("bucket: ", kv.bucket)
            local r1 = assert(kv:put("feature.a", "on"))
            local r2 = assert(kv:put("feature.b", "off"))
            local r3 = assert(kv:put("feature.a", "off"))
            ngx.say("revisions: ", r1, " ", r2, " ", r3)
            local e = assert(kv:get("feature.a"))
            ngx.say("get: ", e.bucket, " ", e.key, " ", e.value, " ", e.revision,
                    " ", e.operation, " ", e.delta, " ", type(e.created))
            ngx.say("revision 1: ", kv:get("feature.a", { revision = r1 }).value)
            ngx.say("revision of another key: ", kv:get("feature.a", { revision = r2 }))
            ngx.say("missing: ", kv:get("nope"))
            ngx.say("update on the last: ", kv:update("feature.a", "maybe", r3))
            ngx.say("update on an old one: ", kv:update("feature.a", "no", r1))
            ngx.say("create a live key: ", kv:create("feature.b", "x"))
            ngx.say("create a new key: ", kv:create("feature.c", "new"))
            ngx.say("delete: ", kv:delete("feature.c"))
            ngx.say("get deleted: ", kv:get("feature.c"))
            ngx.say("create after delete: ", kv:create("feature.c", "again"))
            local keys = assert(kv:keys())
            table.sort(keys)
            ngx.say("keys: ", table.concat(keys, " "))
            local h = assert(kv:history("feature.c"))
            local ops = {}
            for _, x in ipairs(h) do ops[#ops + 1] = x.operation .. ":" .. x.value end
            ngx.say("history: ", table.concat(ops, " "))
            ngx.say("purge: ", kv:purge("feature.a"))
            ngx.say("get purged: ", kv:get("feature.a"))
            h = assert(kv:history("feature.a"))
            ngx.say("history after purge: ", #h, " ", h[1].operation)
            keys = assert(kv:keys())
            table.sort(keys)
            ngx.say("keys: ", table.concat(keys, " "))
            n:close()
        }
    }
--- response_body
bucket: cfg
revisions: 1 2 3
get: cfg feature.a off 3 PUT 0 string
revision 1: on
revision of another key: nilkey not found
missing: nilkey not found
update on the last: 4
update on an old one: nilwrong last sequence: 410071
create a live key: nilkey exists10071
create a new key: 5
delete: true
get deleted: nilkey not found
create after delete: 7
keys: feature.a feature.b feature.c
history: PUT:new DEL: PUT:again
purge: true
get purged: nilkey not found
history after purge: 1 PURGE
keys: feature.b feature.c
--- no_error_log
[error]



=== TEST 2: bad keys and buckets are refused before anything is sent; unknown buckets; an empty bucket
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t024.js()
            local kv = t024.bucket(js, "ok")
            for _, k in ipairs({ "a b", ".lead", "trail.", "star*", "gt>", "", "new\nline" }) do
                ngx.say(kv:put(k, "v"))
            end
            ngx.say(js:create_key_value({ bucket = "a.b" }))
            ngx.say(js:create_key_value({ bucket = "has space" }))
            ngx.say(js:key_value("nosuchbucket"))
            ngx.say(js:delete_key_value("nosuchbucket"))
            ngx.say("empty keys: ", #assert(kv:keys()))
            ngx.say("open: ", js:key_value("ok").bucket)
            ngx.say("delete bucket: ", js:delete_key_value("ok"))
            n:close()
        }
    }
--- response_body
nilinvalid key: a b
nilinvalid key: .lead
nilinvalid key: trail.
nilinvalid key: star*
nilinvalid key: gt>
nilinvalid key: 
nilinvalid key: new
line
nilinvalid bucket name: a.b
nilinvalid bucket name: has space
nilbucket not found10059
nilbucket not found10059
empty keys: 0
open: ok
delete bucket: true
--- no_error_log
[error]



=== TEST 3: watch through the shared connection: current values first, then every change in order; stop
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("kv")
            for _ = 1, 200 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.01)
            end
            local js = assert(conn:jetstream())
            local kv = t024.bucket(js, "w")
            assert(kv:put("a", "1"))
            assert(kv:put("a", "2"))
            assert(kv:put("b", "1"))
            local seen = {}
            local w = assert(kv:watch(">", function(e)
                seen[#seen + 1] = e.key .. "=" .. e.value .. "(" .. e.operation .. ")"
            end))
            for _ = 1, 100 do
                if #seen >= 2 then break end
                ngx.sleep(0.02)
            end
            ngx.say("initial: ", table.concat(seen, " "))
            assert(kv:put("c", "3"))
            assert(kv:delete("a"))
            assert(kv:put("b", "2"))
            -- (a purge removes the key's earlier revisions, and nats-server
            -- 2.9 moves a watcher that has not delivered them yet past
            -- them: b=2 would be gone before it could be read, see README)
            for _ = 1, 100 do
                if #seen >= 5 then break end
                ngx.sleep(0.02)
            end
            assert(kv:purge("b"))
            for _ = 1, 100 do
                if #seen >= 6 then break end
                ngx.sleep(0.02)
            end
            ngx.say("changes: ", table.concat(seen, " ", 3))
            local f = assert(io.popen("$TEST_NGINX_NATS_PEER kvput "
                .. "nats://127.0.0.1:$TEST_NGINX_JS_PORT w e from-libnats"))
            f:read("*a")
            f:close()
            for _ = 1, 100 do
                if #seen >= 7 then break end
                ngx.sleep(0.02)
            end
            ngx.say("libnats' put: ", seen[7])
            ngx.say("stop: ", w:stop())
            assert(kv:put("d", "4"))
            ngx.sleep(0.3)
            ngx.say("after stop: ", #seen)
            local n = require("resty.nats"):new()
            assert(n:connect("127.0.0.1", $TEST_NGINX_JS_PORT))
            ngx.say("watch on a per-request object: ",
                    assert(n:jetstream()):key_value("w"):watch(">", function() end))
            n:close()
        }
    }
--- response_body
initial: a=2(PUT) b=1(PUT)
changes: c=3(PUT) a=(DEL) b=2(PUT) b=(PURGE)
libnats' put: e=from-libnats(PUT)
stop: true
after stop: 7
watch on a per-request object: nilwatch needs a shared connection (nats.shared)
--- no_error_log
[error]



=== TEST 4: a watch outlives a server restart that loses its consumer: made again after the reconnect, no change missed or repeated
--- timeout: 40
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("kvr")
            t024.wait_for(function() return conn:stats().state == "connected" end)
            local js = assert(conn:jetstream())
            js:delete_key_value("r")
            local kv = assert(js:create_key_value({ bucket = "r", storage = "file" }))
            assert(kv:put("a", "1"))
            local seen = {}
            local w = assert(kv:watch(">", function(e)
                seen[#seen + 1] = e.key .. "=" .. e.value
            end))
            t024.wait_for(function() return #seen >= 1 end)
            assert(kv:put("b", "1"))
            t024.wait_for(function() return #seen >= 2 end)
            ngx.say("before: ", table.concat(seen, " "))
            local first = w._consumer
            ngx.say(t024.ctl("stop"))
            ngx.say(t024.ctl("start"))
            t024.wait_for(function()
                local st = conn:stats()
                return st.state == "connected" and st.reconnects >= 1
            end)
            -- JetStream needs a moment after a restart
            local rev
            t024.wait_for(function()
                rev = kv:put("a", "2")
                return rev ~= nil
            end)
            ngx.say("put after the restart: revision ", rev)
            -- (the server may still deliver through the recovered consumer
            -- for a moment before it drops it: wait until it was made again)
            ngx.say("consumer made again: ", t024.wait_for(function()
                return w._consumer ~= first
            end))
            assert(kv:put("c", "1"))
            t024.wait_for(function() return #seen >= 4 end)
            ngx.sleep(0.3)
            ngx.say("after: ", table.concat(seen, " "))
            ngx.say("stop: ", w:stop())
        }
    }
--- response_body
before: a=1 b=1
ok stop
ok start
put after the restart: revision 3
consumer made again: true
after: a=1 b=1 a=2 c=1
stop: true
--- error_log
the server lost the consumer, made again from sequence
--- no_error_log
stack traceback
making the consumer again



=== TEST 5: watch options (updates_only, include_history, ignore_deletes, meta_only) and keys with a filter
--- config
    location = /t {
        content_by_lua_block {
            local conn = require("resty.nats").shared("kv")
            local js = assert(conn:jetstream())
            js:delete_key_value("wo")
            local kv = assert(js:create_key_value({ bucket = "wo", history = 5, storage = "memory" }))
            assert(kv:put("a.x", "1"))
            assert(kv:put("a.x", "2"))
            assert(kv:put("a.y", "3"))
            assert(kv:delete("a.y"))
            assert(kv:put("b.z", "4"))
            local function watch(what, pattern, opts)
                local seen = {}
                local w = assert(kv:watch(pattern, function(e)
                    seen[#seen + 1] = e.key .. "=" .. e.operation .. ":" .. e.value
                end, opts))
                return seen, w
            end
            local all = {
                { "default", ">", nil },
                { "updates_only", ">", { updates_only = true } },
                { "include_history", "a.*", { include_history = true } },
                { "ignore_deletes", ">", { ignore_deletes = true } },
                { "meta_only", "a.>", { meta_only = true } },
            }
            local watchers = {}
            for i, x in ipairs(all) do
                watchers[i] = { watch(x[1], x[2], x[3]) }
            end
            ngx.sleep(0.5)
            assert(kv:put("a.x", "5"))
            assert(kv:delete("b.z"))
            ngx.sleep(0.5)
            for i, x in ipairs(all) do
                ngx.say(x[1], ": ", table.concat(watchers[i][1], " "))
                watchers[i][2]:stop()
            end
            local keys = assert(kv:keys({ filter = "a.*" }))
            table.sort(keys)
            ngx.say("keys a.*: ", table.concat(keys, " "))
            keys = assert(kv:keys({ filter = "b.>" }))
            ngx.say("keys b.>: ", #keys)
            keys = assert(kv:keys())
            ngx.say("keys: ", table.concat(keys, " "))
            ngx.say("bad filter: ", kv:keys({ filter = "a..b" }))
            local ok, err = pcall(kv.watch, kv, ">", function() end,
                                  { updates_only = true, include_history = true })
            ngx.say(ok, " ", (err:gsub("^.-: ", "")))
            js:delete_key_value("wo")
        }
    }
--- response_body
default: a.x=PUT:2 a.y=DEL: b.z=PUT:4 a.x=PUT:5 b.z=DEL:
updates_only: a.x=PUT:5 b.z=DEL:
include_history: a.x=PUT:1 a.x=PUT:2 a.y=PUT:3 a.y=DEL: a.x=PUT:5
ignore_deletes: a.x=PUT:2 b.z=PUT:4 a.x=PUT:5
meta_only: a.x=PUT: a.y=DEL: a.x=PUT:
keys a.*: a.x
keys b.>: 0
keys: a.x
bad filter: nilinvalid key pattern: a..b
false bad argument #3 to 'watch' (updates_only and include_history exclude each other)
--- no_error_log
[error]
