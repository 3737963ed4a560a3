# vim:set ft= ts=4 sw=4 et:
# JetStream object stores (resty.nats.objstore) against a nats-server of
# the suite's own with JetStream on: buckets (create, bind, status, seal,
# delete), put from a string and from a function, get, open, info,
# delete, list, links; the wire layout of ADR-20 checked with the
# protocol written by hand (t/lua/t_raw.lua), an object written by hand
# read back, digests (known SHA-256 vectors, a mismatch), replace and
# delete purging chunks, empty objects, bad input, both connection kinds.

use lib 't/lib';
use TestNats;
use NatsServer;

my $js = NatsServer->start(name => 'objstore',
    conf => NatsServer::js_conf(memory => '256MB', file => '512MB'));
$ENV{TEST_NGINX_JS_PORT} = $js->port;

# a JetStream server with file storage that the handlers pause, stop and
# start
my ($ctl_js_port, $ctl_port) = NatsServer->controlled(
    name => 'objstore-ctl', conf => NatsServer::js_conf(memory => 0));
$ENV{TEST_NGINX_CTL_JS_PORT} = $ctl_js_port;
$ENV{TEST_NGINX_CTL_PORT} = $ctl_port;

repeat_each(1);
plan tests => plan_tests();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("timeout", 30);
    $block->set_value("request", "GET /t");
    $block->set_value("http_config", <<'CONF');
    init_by_lua_block {
        t027 = {}
        function t027.js()
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_JS_PORT))
            return assert(n:jetstream()), n
        end
        function t027.bucket(js, name, cfg)
            js:delete_object_store(name)
            cfg = cfg or {}
            cfg.bucket = name
            cfg.storage = cfg.storage or "memory"
            return assert(js:create_object_store(cfg))
        end
        -- the JetStream context of a side: "shared" (the worker's
        -- connection "obs") or "per-request" (and that connection)
        function t027.js_of(side)
            if side == "shared" then
                local conn = assert(require("resty.nats").shared("obs"))
                return assert(conn:jetstream())
            end
            return t027.js()
        end
        -- a JetStream API request written by hand
        function t027.api(what, body)
            return require("t_raw").api($TEST_NGINX_JS_PORT, what, body)
        end
        -- the last message of subject in stream, by hand: payload or
        -- nil, the error code
        function t027.last(stream, subject)
            local r = assert(t027.api("STREAM.MSG.GET." .. stream,
                                      { last_by_subj = subject }))
            if r.error then
                return nil, r.error.err_code
            end
            return ngx.decode_base64(r.message.data or ""), r.message
        end
        -- ctl("stop" | "start" | "pause" | "resume"): drives the
        -- controlled server
        function t027.ctl(cmd)
            return require("t_ctl").send($TEST_NGINX_CTL_PORT, cmd)
        end
        -- a per-request object on the controlled server, JetStream
        -- requests and waits of timeout ms
        function t027.ctl_js(timeout)
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(5000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_CTL_JS_PORT))
            return assert(n:jetstream({ timeout = timeout })), n
        end
        -- the bytes 0..255, n times
        function t027.bytes(n)
            local t = {}
            for i = 0, 255 do t[#t + 1] = string.char(i) end
            return string.rep(table.concat(t), n)
        end
    }
    init_worker_by_lua_block {
        local nats = require "resty.nats"
        assert(nats.shared("obs", { port = $TEST_NGINX_JS_PORT }))
        assert(nats.shared("ctl", { port = $TEST_NGINX_CTL_JS_PORT,
                                    reconnect_wait = 200 }))
    }
CONF
});

run_tests();

__DATA__

=== TEST 1: a bucket: the stream of ADR-20 (checked by hand), status, bind, delete
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27a", { description = "files",
                                                  ttl = 3600, storage = "file" })
            ngx.say("bucket: ", obs.bucket)
            local si = assert(t027.api("STREAM.INFO.OBJ_t27a"))
            local c = si.config
            ngx.say("subjects: ", table.concat(c.subjects, " "))
            ngx.say("rollup: ", c.allow_rollup_hdrs, ", direct: ", c.allow_direct,
                    ", discard: ", c.discard, ", storage: ", c.storage)
            ngx.say("max_age: ", string.format("%.0f", c.max_age),
                    ", description: ", c.description, ", replicas: ", c.num_replicas)
            local st = assert(obs:status())
            ngx.say("status: ", st.bucket, " ", st.description, " ", st.ttl, " ",
                    st.storage, " ", st.replicas, " ", st.size, " ", st.sealed)
            local again = assert(js:object_store("t27a"))
            ngx.say("bound: ", again.bucket)
            ngx.say("missing: ", js:object_store("t27-none"))
            ngx.say("bad name: ", js:object_store("a.b"))
            ngx.say("bad name on create: ", js:create_object_store({ bucket = "a b" }))
            ngx.say("delete: ", js:delete_object_store("t27a"))
            ngx.say("deleted: ", js:object_store("t27a"))
            ngx.say("delete again: ", js:delete_object_store("t27a"))
            n:close()
        }
    }
--- response_body
bucket: t27a
subjects: $O.t27a.C.> $O.t27a.M.>
rollup: true, direct: true, discard: new, storage: file
max_age: 3600000000000, description: files, replicas: 1
status: t27a files 3600 file 1 0 false
bound: t27a
missing: nilobject store not found10059
bad name: nilinvalid bucket name: a.b
bad name on create: nilinvalid bucket name: a b
delete: true
deleted: nilobject store not found10059
delete again: nilobject store not found10059
--- no_error_log
[error]



=== TEST 2: put a string in chunks: the info, the chunks and the meta on the wire (by hand), get, open piece by piece, known digests
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson.safe"
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27b")
            local data = t027.bytes(1000)       -- 256000 bytes
            local info = assert(obs:put("dir/data.bin", data, {
                chunk_size = 100000, description = "bytes",
                headers = { ["Content-Type"] = "application/octet-stream" },
                metadata = { owner = "t027" } }))
            ngx.say("info: ", info.bucket, " ", info.name, " ", info.size, " ",
                    info.chunks, " ", info.digest, " ", #info.nuid, " ",
                    info.description, " ", info.headers["Content-Type"], " ",
                    info.metadata.owner, " ", info.options.max_chunk_size, " ",
                    info.deleted, " ", type(info.mtime))
            -- the meta, by hand: on the padded base64url of the name, rolled up
            local meta_subj = "$O.t27b.M." .. ngx.encode_base64("dir/data.bin"):gsub("+", "-"):gsub("/", "_")
            local raw, m = t027.last("OBJ_t27b", meta_subj)
            local meta = cjson.decode(raw)
            ngx.say("meta subject: ", m.subject)
            ngx.say("meta: ", meta.name, " ", meta.bucket, " ", meta.size, " ",
                    meta.chunks, " ", meta.digest, " ", meta.nuid == info.nuid, " ",
                    meta.options.max_chunk_size, " ",
                    cjson.encode(meta.headers), " ", meta.metadata.owner)
            ngx.say("rollup header: ", ngx.decode_base64(m.hdrs):find("Nats-Rollup: sub", 1, true) ~= nil)
            -- the chunks, by hand
            local chunks = {}
            local seq = 0
            while true do
                local r = assert(t027.api("STREAM.MSG.GET.OBJ_t27b",
                                          { next_by_subj = "$O.t27b.C." .. info.nuid, seq = seq + 1 }))
                if r.error then break end
                chunks[#chunks + 1] = ngx.decode_base64(r.message.data)
                seq = r.message.seq
            end
            ngx.say("chunks by hand: ", #chunks, " sizes ", #chunks[1], " ", #chunks[2],
                    " ", #chunks[3], ", joined equal: ", table.concat(chunks) == data)
            local got, ginfo = obs:get("dir/data.bin")
            ngx.say("get: ", got == data, " ", ginfo.size)
            local reader = assert(obs:open("dir/data.bin"))
            local sizes, parts = {}, {}
            while true do
                local p, err = reader()
                if not p then ngx.say("end: ", err) break end
                sizes[#sizes + 1] = #p
                parts[#parts + 1] = p
            end
            ngx.say("open: ", table.concat(sizes, " "), " ", table.concat(parts) == data)
            ngx.say("after the end: ", reader())
            -- a read ended early: its consumer goes at once
            local r2 = assert(obs:open("dir/data.bin"))
            ngx.say("close: ", #r2(), " ", r2:close(), " ", r2())
            local consumers
            for _ = 1, 50 do
                consumers = assert(t027.api("STREAM.INFO.OBJ_t27b")).state.consumer_count
                if consumers == 0 then break end
                ngx.sleep(0.02)
            end
            ngx.say("consumers after close: ", consumers)
            -- known vectors: SHA-256 of "abc" and of ""
            ngx.say("abc: ", assert(obs:put("abc", "abc")).digest)
            local e = assert(obs:put("empty", ""))
            ngx.say("empty: ", e.size, " ", e.chunks, " ", e.digest)
            local eg, einfo = obs:get("empty")
            ngx.say("get empty: [", eg, "] ", einfo.size)
            ngx.say("info: ", obs:info("abc").size, ", missing: ", obs:info("nope"))
            n:close()
        }
    }
--- response_body
info: t27b dir/data.bin 256000 3 SHA-256=tXtksZjV1ZzloiqbnyXnKn0IFHbUMgUaqSPz2-u5CTQ= 22 bytes application/octet-stream t027 100000 false string
meta subject: $O.t27b.M.ZGlyL2RhdGEuYmlu
meta: dir/data.bin t27b 256000 3 SHA-256=tXtksZjV1ZzloiqbnyXnKn0IFHbUMgUaqSPz2-u5CTQ= true 100000 {"Content-Type":["application\/octet-stream"]} t027
rollup header: true
chunks by hand: 3 sizes 100000 100000 56000, joined equal: true
get: true 256000
end: nil
open: 100000 100000 56000 true
after the end: nil
close: 100000 true nilclosed
consumers after close: 0
abc: SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=
empty: 0 0 SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=
get empty: [] 0
info: 3, missing: nilobject not found
--- no_error_log
[error]



=== TEST 3: put from a function (pieces of any size, chunks cut at chunk_size); a source that fails leaves nothing (its chunks purged, the old object intact)
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27c")
            local data = t027.bytes(300)        -- 76800 bytes
            local sizes = { 1, 7, 1000, 4096, 30000, 3 }
            local pos, k = 1, 0
            local info = assert(obs:put("f", function()
                if pos > #data then return nil end
                k = k + 1
                local len = sizes[k % #sizes + 1]
                local p = data:sub(pos, pos + len - 1)
                pos = pos + len
                return p
            end, { chunk_size = 10000 }))
            ngx.say("put: ", info.size, " ", info.chunks, " ", obs:get("f") == data)
            local before = assert(t027.api("STREAM.INFO.OBJ_t27c")).state.messages
            local calls = 0
            local bad, err = obs:put("f", function()
                calls = calls + 1
                if calls <= 5 then return string.rep("z", 9000) end
                return nil, "disk on fire"
            end, { chunk_size = 10000 })
            ngx.say("failed put: ", bad, " ", err)
            local st = assert(t027.api("STREAM.INFO.OBJ_t27c")).state
            ngx.say("messages after: ", st.messages - before)
            ngx.say("old one intact: ", obs:get("f") == data)
            ngx.say("not a string: ", obs:put("g", function() return 42 end))
            ngx.say("g absent: ", obs:info("g"))
            local ok, e = pcall(obs.put, obs, "g", 42)
            ngx.say("bad source: ", ok, " ", e)
            ngx.say("bad name: ", obs:put("", "x"))
            ok, e = pcall(obs.put, obs, "g", "x", { chunk_size = 0 })
            ngx.say("bad chunk_size: ", ok, " ", e)
            n:close()
        }
    }
--- response_body
put: 76800 8 true
failed put: nil source: disk on fire
messages after: 0
old one intact: true
not a string: nilsource returned a number, not a string
g absent: nilobject not found
bad source: false bad argument #2 to 'put' (string or function expected, got number)
bad name: nilobject name must be a non-empty string
bad chunk_size: false bad 'chunk_size' option to 'put' (a positive integer expected)
--- no_error_log
[error]



=== TEST 4: replace and delete purge the chunks (checked by hand); list; an object written by hand in ADR-20 layout read back; a digest that does not match
--- config
    location = /t {
        content_by_lua_block {
            local raw = require "t_raw"
            local port = $TEST_NGINX_JS_PORT
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27d")
            local one = assert(obs:put("x", string.rep("1", 3000), { chunk_size = 1000 }))
            local two = assert(obs:put("x", string.rep("2", 1500), { chunk_size = 1000 }))
            ngx.say("new nuid: ", one.nuid ~= two.nuid)
            ngx.say("old chunks: ", t027.last("OBJ_t27d", "$O.t27d.C." .. one.nuid))
            ngx.say("new chunks: ", #(t027.last("OBJ_t27d", "$O.t27d.C." .. two.nuid)))
            ngx.say("get: ", obs:get("x") == string.rep("2", 1500))
            assert(obs:put("y", "yy"))
            assert(obs:put("z~~~", "zz"))
            local list = assert(obs:list())
            local names = {}
            for _, i in ipairs(list) do names[#names + 1] = i.name .. ":" .. i.size end
            table.sort(names)
            ngx.say("list: ", table.concat(names, " "), " ", type(list[1].mtime))
            ngx.say("meta of z~~~: ", t027.last("OBJ_t27d", "$O.t27d.M.en5-fg==") ~= nil)
            ngx.say("delete: ", obs:delete("x"))
            ngx.say("chunks after delete: ", t027.last("OBJ_t27d", "$O.t27d.C." .. two.nuid))
            local meta = require("cjson").decode((t027.last("OBJ_t27d", "$O.t27d.M.eA==")))
            ngx.say("delete marker: ", meta.deleted, " ", meta.size, " ", meta.chunks)
            ngx.say("info: ", obs:info("x"))
            ngx.say("get: ", obs:get("x"))
            ngx.say("delete again: ", obs:delete("x"))
            names = {}
            for _, i in ipairs(assert(obs:list())) do names[#names + 1] = i.name end
            table.sort(names)
            ngx.say("list: ", table.concat(names, " "))

            -- written by hand as another client would: "abc" in two chunks
            local nuid = "HANDMADE0123456789abcd"
            for _, c in ipairs({ "a", "bc" }) do
                assert(raw.request(port, "$O.t27d.C." .. nuid, c))
            end
            local meta_json = '{"name":"hand.txt","bucket":"t27d","nuid":"' .. nuid
                .. '","size":3,"mtime":"0001-01-01T00:00:00Z","chunks":2,'
                .. '"digest":"SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",'
                .. '"options":{"max_chunk_size":2},"headers":{"X-A":["1","2"]}}'
            assert(raw.request(port, "$O.t27d.M.aGFuZC50eHQ=", meta_json,
                               { ["Nats-Rollup"] = "sub" }))
            local data, info = obs:get("hand.txt")
            ngx.say("by hand: ", data, " ", info.size, " ", info.chunks, " ",
                    table.concat(info.headers["X-A"], ","))
            -- the same with a wrong digest (that of "abd")
            local bad = meta_json:gsub("hand.txt", "bad.txt"):gsub(
                "ungWv48Bz%-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=",
                "pS0VnyYrLG3bckphhAvvw26zDIiHekAwtly-himESck=")
            assert(raw.request(port, "$O.t27d.M.YmFkLnR4dA==", bad,
                               { ["Nats-Rollup"] = "sub" }))
            local reader = assert(obs:open("bad.txt"))
            ngx.say("first piece: ", reader())
            ngx.say("last piece: ", reader())
            ngx.say("then: ", reader())
            ngx.say("get: ", obs:get("bad.txt"))
            n:close()
        }
    }
--- response_body
new nuid: true
old chunks: nil10037
new chunks: 500
get: true
list: x:1500 y:2 z~~~:2 string
meta of z~~~: true
delete: true
chunks after delete: nil10037
delete marker: true 0 0
info: nilobject not found
get: nilobject not found
delete again: nilobject not found
list: y z~~~
by hand: abc 3 2 1,2
first piece: a
last piece: nildigest does not match
then: nildigest does not match
get: nildigest does not match
--- no_error_log
[error]



=== TEST 5: links: get and open follow them; links to links, to deleted objects and over live objects are refused
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27e")
            local other = t027.bucket(js, "t27e2")
            assert(obs:put("real", "the bytes"))
            assert(other:put("far", "far bytes"))
            local l = assert(obs:add_link("alias", "real"))
            ngx.say("link: ", l.name, " ", l.options.link.bucket, " ",
                    l.options.link.name, " ", l.size)
            local data, info = obs:get("alias")
            ngx.say("get: ", data, " (", info.name, ")")
            ngx.say("info: ", obs:info("alias").options.link.name)
            local far = assert(other:info("far"))
            assert(obs:add_link("far-alias", far))
            ngx.say("other bucket: ", (obs:get("far-alias")))
            ngx.say("link to a link: ", obs:add_link("alias2", "alias"))
            ngx.say("over an object: ", obs:add_link("real", far))
            ngx.say("to a missing one: ", obs:add_link("x", "nope"))
            assert(obs:add_link("alias", "real"))   -- a link over a link: fine
            assert(obs:delete("real"))
            ngx.say("dangling: ", obs:get("alias"))
            ngx.say("delete a link: ", obs:delete("alias"), " ", obs:info("alias"))
            js:delete_object_store("t27e2")
            n:close()
        }
    }
--- response_body
link: alias t27e real 0
get: the bytes (real)
info: real
other bucket: far bytes
link to a link: nilnot allowed to link to another link
over an object: nilan object already exists with that name
to a missing one: nilobject not found
dangling: nilobject not found
delete a link: true nilobject not found
--- no_error_log
[error]



=== TEST 6: seal: status says so and puts fail, reads still work
--- config
    location = /t {
        content_by_lua_block {
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27f")
            assert(obs:put("a", "aaa"))
            ngx.say("seal: ", obs:seal())
            ngx.say("sealed: ", obs:status().sealed)
            local ok, err = obs:put("b", "bbb")
            ngx.say("put: ", ok, " ", err ~= nil)
            ngx.say("b absent: ", obs:info("b"))
            ngx.say("get: ", (obs:get("a")))
            n:close()
        }
    }
--- response_body
seal: true
sealed: true
put: nil true
b absent: nilobject not found
get: aaa
--- no_error_log
[error]



=== TEST 7: the shared connection: put from a function, open, get, list, delete; 2 MiB in 128 KiB chunks, each read in two parts of 64 KiB (a chunk over 128 KiB - 64 bytes comes in parts of equal size, one up to that size whole)
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = assert(nats.shared("obs"))
            local js = assert(conn:jetstream())
            local obs = t027.bucket(js, "t27g")
            local block = t027.bytes(256)          -- 64 KiB
            local k = 0
            local info = assert(obs:put("big", function()
                k = k + 1
                if k > 32 then return nil end
                return block
            end))
            ngx.say("put: ", info.size, " ", info.chunks)
            local reader = assert(obs:open("big"))
            local total, pieces, same = 0, 0, true
            while true do
                local p, err = reader()
                if not p then ngx.say("end: ", err) break end
                pieces = pieces + 1
                total = total + #p
                if p ~= block then same = false end
            end
            ngx.say("open: ", pieces, " ", total, " ", same)
            ngx.say("get: ", obs:get("big") == string.rep(block, 32))
            for _, cs in ipairs({ 131008, 131009 }) do
                local data = t027.bytes(1024):sub(1, 2 * cs)
                assert(obs:put("edge", data, { chunk_size = cs }))
                local r = assert(obs:open("edge"))
                local sizes, back = {}, {}
                while true do
                    local p, err = r()
                    if not p then assert(not err, err) break end
                    sizes[#sizes + 1] = #p
                    back[#back + 1] = p
                end
                ngx.say("chunks of ", cs, ": ", table.concat(sizes, " "),
                        " ", table.concat(back) == data)
            end
            -- one chunk over 128 KiB - 64 bytes: read by Direct Get, in
            -- parts all the same
            local one = t027.bytes(1024):sub(1, 131009)
            assert(obs:put("edge", one, { chunk_size = 262144 }))
            local r = assert(obs:open("edge"))
            local a, b, c = r(), r(), r()
            ngx.say("one chunk of 131009: ", #a, " ", #b, " ", c, " ", a .. b == one)
            assert(obs:delete("edge"))
            ngx.say("list: ", #obs:list())
            ngx.say("delete: ", obs:delete("big"), " ", #obs:list())
        }
    }
--- response_body
put: 2097152 16
end: nil
open: 32 2097152 true
get: true
chunks of 131008: 131008 131008 true
chunks of 131009: 65505 65504 65505 65504 true
one chunk of 131009: 65505 65504 nil true
list: 1
delete: true 0
--- no_error_log
[error]



=== TEST 8: memory: a 64 MiB object put from a function and read through open grows the worker's peak RSS by less than 32 MiB (digest checked at the end)
--- config
    location = /t {
        content_by_lua_block {
            local mem = require "t_mem"
            local js, n = t027.js()
            local obs = t027.bucket(js, "t27h", { storage = "file" })
            mem.reset_peak()
            local rss0 = mem.kib("VmRSS")
            local k = 0
            local info = assert(obs:put("big", function()
                k = k + 1
                if k > 1024 then return nil end
                return string.rep(string.char(k % 256), 65536)   -- 64 KiB
            end))
            ngx.say("put: ", info.size, " ", info.chunks)
            local reader = assert(obs:open("big"))
            local total = 0
            while true do
                local p, err = reader()
                if not p then ngx.say("end: ", err) break end
                total = total + #p
            end
            ngx.say("read: ", total)
            local grown = mem.kib("VmHWM") - rss0
            ngx.log(ngx.NOTICE, "t027: peak RSS grew by ", grown, " KiB")
            ngx.say("peak RSS growth under 32 MiB: ", grown < 32768)
            js:delete_object_store("t27h")
            n:close()
        }
    }
--- response_body
put: 67108864 512
end: nil
read: 67108864
peak RSS growth under 32 MiB: true
--- no_error_log
[error]



=== TEST 9: watch (shared connection): every object's info first, then every change in order; a per-request object is refused
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = assert(nats.shared("obs"))
            local js = assert(conn:jetstream())
            local obs = t027.bucket(js, "t27i")
            assert(obs:put("one", "1"))
            assert(obs:put("two", "22"))
            local seen = {}
            local w = assert(obs:watch(function(info)
                seen[#seen + 1] = info.name .. ":" .. info.size
                                  .. (info.deleted and ":deleted" or "")
            end))
            for _ = 1, 100 do
                if #seen >= 2 then break end
                ngx.sleep(0.02)
            end
            assert(obs:put("three", "333"))
            assert(obs:delete("one"))
            assert(obs:put("two", "2222"))
            for _ = 1, 100 do
                if #seen >= 5 then break end
                ngx.sleep(0.02)
            end
            ngx.say(table.concat(seen, " "))
            ngx.say("stop: ", w:stop())
            local pjs, n = t027.js()
            local pobs = assert(pjs:object_store("t27i"))
            ngx.say("per-request: ", pobs:watch(function() end))
            n:close()
        }
    }
--- response_body
one:1 two:2 three:3 one:0:deleted two:4
stop: true
per-request: nilwatch needs a shared connection (nats.shared)
--- no_error_log
[error]



=== TEST 10: chunks' acknowledgements that do not come (the server paused in the middle of a put): nil, err within the timeout, nothing visible, the bucket usable after
--- config
    location = /t {
        lua_socket_log_errors off;  # the read that times out is expected
        content_by_lua_block {
            local js, n = t027.ctl_js(1000)
            js:delete_object_store("t27j")
            local obs = assert(js:create_object_store({ bucket = "t27j", storage = "file" }))
            local k = 0
            ngx.update_time()
            local t0 = ngx.now()
            local ok, err = obs:put("stuck", function()
                k = k + 1
                -- (after the put read the old meta, before any chunk)
                if k == 1 then ngx.say(t027.ctl("pause")) end
                if k > 8 then return nil end
                return string.rep("s", 65536)
            end, { chunk_size = 65536 })
            ngx.update_time()
            ngx.say("put: ", ok, " ", err)
            ngx.say("within 3 s: ", ngx.now() - t0 < 3)
            ngx.say(t027.ctl("resume"))
            n:close()
            js, n = t027.ctl_js(5000)
            obs = assert(js:object_store("t27j"))
            ngx.say("visible: ", obs:info("stuck"))
            ngx.say("put after: ", assert(obs:put("fine", "fine")).size)
            ngx.say("list: ", #assert(obs:list()))
            n:close()
        }
    }
--- response_body
ok pause
put: nil timeout waiting for a chunk's acknowledgement
within 3 s: true
ok resume
visible: nilobject not found
put after: 4
list: 1
--- error_log
were not purged
--- no_error_log
[error]



=== TEST 11: a server restart in the middle of a read: the reader fails (no hang), the object is whole after the restart (file storage), on both kinds of connection
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local js, n = t027.ctl_js(2000)
            js:delete_object_store("t27k")
            local obs = assert(js:create_object_store({ bucket = "t27k", storage = "file" }))
            -- 24 MiB: more than a reader has on its way (8 MiB at most)
            local data = t027.bytes(98304)
            assert(obs:put("r", data, { chunk_size = 32768 }))
            local reader = assert(obs:open("r"))
            ngx.say("first piece: ", #reader())
            ngx.say(t027.ctl("stop"))
            local p, err = reader()
            while p do p, err = reader() end
            ngx.say("reader: ", p, " ", err ~= nil)
            ngx.say(t027.ctl("start"))
            n:close()
            -- JetStream needs a moment after a restart
            local got
            for _ = 1, 100 do
                local js2, n2 = t027.ctl_js(2000)
                local o = js2:object_store("t27k")
                got = o and o:get("r")
                n2:close()
                if got then break end
                ngx.sleep(0.1)
            end
            ngx.say("after the restart: ", got == data)

            -- the shared connection reconnects by itself
            local conn = assert(nats.shared("ctl"))
            for _ = 1, 100 do
                if conn:stats().state == "connected" then break end
                ngx.sleep(0.05)
            end
            local sobs = assert(assert(conn:jetstream({ timeout = 2000 })):object_store("t27k"))
            reader = assert(sobs:open("r"))
            ngx.say("shared, first piece: ", #reader())
            ngx.say(t027.ctl("stop"))
            p, err = reader()
            while p do p, err = reader() end
            ngx.say("shared reader: ", p, " ", err ~= nil)
            ngx.say(t027.ctl("start"))
            for _ = 1, 100 do
                got = sobs:get("r")
                if got then break end
                ngx.sleep(0.1)
            end
            ngx.say("shared, after the restart: ", got == data)
        }
    }
--- response_body
first piece: 32768
ok stop
reader: nil true
ok start
after the restart: true
shared, first piece: 32768
ok stop
shared reader: nil true
ok start
shared, after the restart: true
--- no_error_log
stack traceback
[alert]
[crit]



=== TEST 12: another object replaced in the middle of a read (a rollup of its meta while the chunks are in flight): the read still gets every chunk, on both kinds of connection
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = assert(nats.shared("obs"))
            for _, side in ipairs({ "per-request", "shared" }) do
                local js, n = t027.js_of(side)
                local obs = t027.bucket(js, "t27r")
                local block = t027.bytes(512)      -- 128 KiB: one chunk
                local k = 0
                assert(obs:put("big", function()
                    k = k + 1
                    if k > 48 then return nil end
                    return block
                end))                              -- 48 chunks: 6 MiB
                assert(obs:put("other", "v1"))
                local reader = assert(obs:open("big"))
                local total, pieces = 0, 0
                local p, err = reader()
                total, pieces = #p, 1
                -- the other object replaced while this read has asked
                -- for two batches of its chunks (16 of 48)
                local other, oerr
                if side == "shared" then
                    other, oerr = obs:put("other", "v2")
                else
                    -- (this object reads its socket only inside calls:
                    -- the put goes through a connection of its own)
                    local js2, n2 = t027.js()
                    other, oerr = js2:object_store("t27r"):put("other", "v2")
                    n2:close()
                end
                ngx.say(side, " replaced: ", other and other.size, oerr)
                while true do
                    p, err = reader()
                    if not p then break end
                    pieces = pieces + 1
                    total = total + #p
                end
                ngx.say(side, " read: ", pieces, " ", total, " ", err)
                ngx.say(side, " other: ", (obs:get("other")))
                if n then n:close() end
            end
        }
    }
--- response_body
per-request replaced: 2nil
per-request read: 96 6291456 nil
per-request other: v2
shared replaced: 2nil
shared read: 96 6291456 nil
shared other: v2
--- no_error_log
[error]



=== TEST 13: Direct Get: the meta and a one-chunk object's chunk are read by Direct Get (no consumer made), a larger object through a consumer; a bucket whose stream does not allow it is read through the JSON API and a consumer; a handle that finds Direct Get gone (the stream updated) warns and reads on without it (for a minute); a replace and a delete read the meta from the stream's leader; both connection kinds
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local cjson = require "cjson"
            local conn = assert(nats.shared("obs"))
            -- what the library asks the server, seen by a subscriber
            local seen = {}
            local spy = assert(conn:subscribe("$JS.API.>", function(m)
                local what = m.subject:match("^%$JS%.API%.([A-Z]+%.[A-Z]+)")
                seen[what] = (seen[what] or 0) + 1
            end))
            local function asked()
                assert(conn:flush())
                ngx.sleep(0.1)
                local t = {}
                for k, v in pairs(seen) do t[#t + 1] = k .. "=" .. v end
                table.sort(t)
                seen = {}
                return table.concat(t, " ")
            end
            local small = t027.bytes(4)              -- 1 KiB: one chunk
            local large = t027.bytes(1024)           -- 256 KiB: two chunks
            for _, side in ipairs({ "per-request", "shared" }) do
                local js, n = t027.js_of(side)
                local obs = t027.bucket(js, "t27d")
                assert(obs:put("small", small))
                assert(obs:put("large", large))
                asked()
                ngx.say(side, " small: ", obs:get("small") == small, " ", asked())
                ngx.say(side, " large: ", obs:get("large") == large, " ", asked())
                if n then n:close() end
            end
            -- what a change is decided on is asked to the stream's leader
            -- (a replica that Direct Get reaches may be behind)
            local obs = assert(assert(conn:jetstream()):object_store("t27d"))
            asked()
            assert(obs:put("small", small))
            ngx.say("replace: ", asked())
            assert(obs:delete("small"))
            ngx.say("delete: ", asked())

            -- a stream without allow_direct, made by hand
            local js = assert(conn:jetstream())
            js:delete_object_store("t27e")
            local r = t027.api("STREAM.CREATE.OBJ_t27e", {
                name = "OBJ_t27e", subjects = { "$O.t27e.C.>", "$O.t27e.M.>" },
                storage = "memory", allow_rollup_hdrs = true,
                discard = "new", allow_direct = false,
            })
            assert(not r.error, r.error and r.error.description)
            obs = assert(js:object_store("t27e"))
            assert(obs:put("small", small))
            asked()
            ngx.say("no direct: ", obs:get("small") == small, " ", asked())

            -- Direct Get turned off under a handle that had it
            local d = t027.bucket(js, "t27f")
            assert(d:put("small", small))
            local si = t027.api("STREAM.INFO.OBJ_t27f")
            si.config.allow_direct = false
            r = t027.api("STREAM.UPDATE.OBJ_t27f", si.config)
            assert(not r.error, r.error and r.error.description)
            asked()
            ngx.say("turned off: ", d:get("small") == small, " ", asked())
            ngx.say("again: ", d:get("small") == small, " ", asked())
            spy:unsubscribe()
        }
    }
--- response_body
per-request small: true DIRECT.GET=2
per-request large: true CONSUMER.CREATE=1 CONSUMER.DELETE=1 CONSUMER.MSG=1 DIRECT.GET=1
shared small: true DIRECT.GET=2
shared large: true CONSUMER.CREATE=1 CONSUMER.DELETE=1 CONSUMER.MSG=1 DIRECT.GET=1
replace: STREAM.MSG=1 STREAM.PURGE=1
delete: STREAM.MSG=1 STREAM.PURGE=1
no direct: true CONSUMER.CREATE=1 CONSUMER.DELETE=1 CONSUMER.MSG=1 STREAM.MSG=1
turned off: true CONSUMER.CREATE=1 CONSUMER.DELETE=1 CONSUMER.MSG=1 DIRECT.GET=1 STREAM.MSG=1
again: true CONSUMER.CREATE=1 CONSUMER.DELETE=1 CONSUMER.MSG=1 STREAM.MSG=1
--- error_log
object store t27f: Direct Get failed
--- no_error_log
[error]



=== TEST 14: reader:seek(offset): the read starts at that byte, its consumer at the chunk holding it (the stream sequence of the first chunk + its index, as the create request shows), also when other messages came among the chunks (written by hand: the consumer starts a chunk early and the reader drops it); an object whose meta lacks this library's full-chunks mark (a short chunk in the middle, as nats.go may write) is read from its first chunk; at or past the end: nothing; after the first read: an error; both connection kinds
--- config
    location = /t {
        content_by_lua_block {
            local cjson = require "cjson"
            local raw = require "t_raw"
            local port = $TEST_NGINX_JS_PORT
            local conn = assert(require("resty.nats").shared("obs"))
            local starts = {}
            local spy = assert(conn:subscribe("$JS.API.CONSUMER.CREATE.OBJ_t27s",
                function(m)
                    local c = cjson.decode(m.payload).config
                    starts[#starts + 1] = c.opt_start_seq or 0
                end))
            local function read_from(obs, name, o)
                local r = assert(obs:open(name))
                assert(r:seek(o))
                local t = {}
                while true do
                    local p, e = r()
                    if not p then assert(not e, e) break end
                    t[#t + 1] = p
                end
                return table.concat(t)
            end
            local data = t027.bytes(40):sub(1, 10000)
            for _, side in ipairs({ "per-request", "shared" }) do
                local js, n = t027.js_of(side)
                local obs = t027.bucket(js, "t27s")
                assert(obs:put("ten", data, { chunk_size = 1000 }))
                local first = assert(t027.api("STREAM.MSG.GET.OBJ_t27s",
                    { seq = 1, next_by_subj = "$O.t27s.C." .. obs:info("ten").nuid }))
                first = first.message.seq
                local out = {}
                for _, o in ipairs({ 0, 1, 999, 1000, 4321, 9999 }) do
                    starts = {}
                    local got = read_from(obs, "ten", o)
                    assert(conn:flush())
                    ngx.sleep(0.05)         -- (the spy's callback runs)
                    out[#out + 1] = o .. "=" .. tostring(got == data:sub(o + 1))
                        .. "@" .. (starts[1] and (starts[1] == 0 and "start"
                                   or "+" .. (starts[1] - first)) or "?")
                end
                ngx.say(side, ": ", table.concat(out, " "))
                ngx.say(side, " at the end: [", read_from(obs, "ten", 10000),
                        "] [", read_from(obs, "ten", 20000), "]")
                if n then n:close() end
            end

            -- by hand, "abcdefghij": (1) in chunks of 3 with another message
            -- after each, the meta marked as this library marks its own
            -- (full chunks): a seek starts its consumer a chunk early and
            -- drops it; (2) as nats.go may write it from a stream, a short
            -- chunk in the middle, unmarked: a seek reads from the first
            local js = assert(conn:jetstream())
            local obs = assert(js:object_store("t27s"))
            local h = require("resty.nats.jetstream.sha256").new()
            h:update("abcdefghij")
            local digest = "SHA-256=" .. ngx.encode_base64(h:final())
                :gsub("+", "-"):gsub("/", "_")
            local function by_hand(name, nuid, chunks, other, marked)
                for _, c in ipairs(chunks) do
                    assert(raw.request(port, "$O.t27s.C." .. nuid, c))
                    if other then
                        assert(raw.request(port, "$O.t27s.C.OTHERxxxxxxxxxxxxxxxxx", "x"))
                    end
                end
                local hdrs = { ["Nats-Rollup"] = "sub" }
                if marked then hdrs["Resty-Nats-Full-Chunks"] = "1" end
                local enc = ngx.encode_base64(name):gsub("+", "-"):gsub("/", "_")
                assert(raw.request(port, "$O.t27s.M." .. enc, cjson.encode({
                    name = name, bucket = "t27s", nuid = nuid, size = 10,
                    chunks = #chunks, digest = digest,
                    mtime = "2026-01-01T00:00:00Z",
                    options = { max_chunk_size = 3 } }), hdrs))
                local ok, late = {}, 0
                for o = 0, 9 do
                    starts = {}
                    ok[#ok + 1] = tostring(read_from(obs, name, o)
                                           == ("abcdefghij"):sub(o + 1))
                    assert(conn:flush())
                    ngx.sleep(0.05)
                    if (starts[1] or 0) > 0 then late = late + 1 end
                end
                ngx.say(name, ": ", table.concat(ok, " "), "; consumers started past the first chunk: ", late)
                ngx.say(name, " whole: ", (obs:get(name)))
            end
            by_hand("interleaved", "INTERLEAVED0123456789a",
                    { "abc", "def", "ghi", "j" }, true, true)
            by_hand("short", "SHORTCHUNK0123456789ab",
                    { "ab", "cde", "fgh", "ij" }, false, false)

            local r = assert(obs:open("ten"))
            r()
            local sok, serr = pcall(r.seek, r, 5)
            ngx.say("seek after a read: ", sok, " ", type(serr) == "string" and serr or cjson.encode(serr))
            r:close()
            spy:unsubscribe()
        }
    }
--- response_body_like
^per-request: 0=true@start 1=true@start 999=true@start 1000=true@\+1 4321=true@\+4 9999=true@\+9
per-request at the end: \[\] \[\]
shared: 0=true@start 1=true@start 999=true@start 1000=true@\+1 4321=true@\+4 9999=true@\+9
shared at the end: \[\] \[\]
interleaved: true true true true true true true true true true; consumers started past the first chunk: 7
interleaved whole: abcdefghij
short: true true true true true true true true true true; consumers started past the first chunk: 0
short whole: abcdefghij
seek after a read: false .*seek after the first read
--- no_error_log
[error]
