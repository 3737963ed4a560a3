# vim:set ft= ts=4 sw=4 et:
# Clusters: a three-node nats-server cluster on loopback (routes between
# the nodes); connect over a server list, a node killed mid-test, members
# learnt from INFO connect_urls, lame duck mode.

use lib 't/lib';
use TestNats;
use NatsServer;

my @client = map { NatsServer::free_port() } 1 .. 3;
my @route = map { NatsServer::free_port() } 1 .. 3;
my $routes = join ', ', map { "nats-route://127.0.0.1:$_" } @route;
my @nodes;
for my $i (0 .. 2) {
    my $n = $i + 1;
    push @nodes, NatsServer->start(
        name => "node$n", ports => [qw(port cport)],
        port_values => { port => $client[$i], cport => $route[$i] },
        conf => <<CONF);
server_name: node$n
listen: 127.0.0.1:\$port
cluster {
    name: testcluster
    listen: 127.0.0.1:\$cport
    routes: [ $routes ]
}
CONF
}

my $ldm = NatsServer->start(name => 'ldm', conf => <<'CONF');
server_name: ldm
listen: 127.0.0.1:$port
lame_duck_grace_period: "1s"
lame_duck_duration: "30s"
CONF

for my $i (0 .. 2) {
    $ENV{"TEST_NGINX_NODE$i\_PORT"} = $client[$i];
    $ENV{"TEST_NGINX_NODE$i\_PID"} = $nodes[$i]{pid};
}
# two more nodes for the move of a shared connection: A enters lame duck
# mode, its clients move to B
my @mclient = map { NatsServer::free_port() } 1 .. 2;
my @mroute = map { NatsServer::free_port() } 1 .. 2;
my $mroutes = join ', ', map { "nats-route://127.0.0.1:$_" } @mroute;
my @mnodes;
for my $i (0 .. 1) {
    my $n = ('A', 'B')[$i];
    push @mnodes, NatsServer->start(
        name => "move$n", ports => [qw(port cport)],
        port_values => { port => $mclient[$i], cport => $mroute[$i] },
        conf => <<CONF);
server_name: move$n
listen: 127.0.0.1:\$port
lame_duck_grace_period: "2s"
lame_duck_duration: "30s"
cluster {
    name: movecluster
    listen: 127.0.0.1:\$cport
    routes: [ $mroutes ]
}
CONF
}
$ENV{TEST_NGINX_MOVEA_PORT} = $mclient[0];
$ENV{TEST_NGINX_MOVEB_PORT} = $mclient[1];
$ENV{TEST_NGINX_MOVEA_PID} = $mnodes[0]{pid};

$ENV{TEST_NGINX_LDM_PORT} = $ldm->port;
$ENV{TEST_NGINX_LDM_PID} = $ldm->{pid};

# the routes need a moment to form (connect_urls come with them)
sleep 2;

repeat_each(1);
no_shuffle();
plan tests => plan_tests();
no_long_string();
run_tests();

__DATA__

=== TEST 1: connect over a server list; a node killed mid-test; the next connect goes to a live node; members learnt from INFO replace a dead seed
--- timeout: 15
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local p = { $TEST_NGINX_NODE0_PORT, $TEST_NGINX_NODE1_PORT, $TEST_NGINX_NODE2_PORT }
            local function url(i) return "nats://127.0.0.1:" .. p[i] end

            local function roundtrip(n, subject)
                local got
                local sid = assert(n:subscribe(subject, function(m) got = m.payload end))
                assert(n:publish(subject, "ok"))
                assert(n:wait(1))
                assert(n:unsubscribe(sid))
                return got
            end

            local a = assert(nats:new())
            a:set_timeout(2000)
            assert(a:connect({ servers = { url(1), url(2), url(3) }, no_randomize = true }))
            local info = a:server_info()
            ngx.say("first: ", info.server_name, " ", roundtrip(a, "c.one"))
            ngx.say("learnt members: ", #(info.connect_urls or {}))

            -- a cross-node message: a subscriber on node3, a publisher on node1
            local c = assert(nats:new())
            c:set_timeout(2000)
            assert(c:connect({ servers = { url(3) } }))
            local across
            assert(c:subscribe("c.across", function(m) across = m.payload end))
            assert(c:flush())
            ngx.sleep(0.3)
            assert(a:publish("c.across", "routed"))
            assert(c:wait(1))
            ngx.say("across the route: ", across)

            os.execute("kill -TERM $TEST_NGINX_NODE0_PID")
            ngx.sleep(0.5)
            local ok, err = a:wait(1)
            ngx.say("node1 gone: ", ok, " ", err == "closed" or err == "connection reset by peer")

            local b = assert(nats:new())
            b:set_timeout(2000)
            ok, err = b:connect({ servers = { url(1), url(2), url(3) }, no_randomize = true })
            ngx.say("reconnect: ", ok, " ", err, " to ", b:server_info().server_name,
                    " ", roundtrip(b, "c.two"))
            b:close()

            -- node2 as the only seed: it tells us about node3; kill node2,
            -- and a connect with that seed still succeeds, on node3
            local d = assert(nats:new())
            d:set_timeout(2000)
            assert(d:connect({ servers = { url(2) } }))
            d:close()
            os.execute("kill -TERM $TEST_NGINX_NODE1_PID")
            ngx.sleep(0.5)
            local e = assert(nats:new())
            e:set_timeout(2000)
            ok, err = e:connect({ servers = { url(2) } })
            ngx.say("dead seed, learnt member: ", ok, " ", err, " ",
                    ok and e:server_info().server_name)
            if ok then e:close() end
            c:close()
        }
    }
--- request
GET /t
--- response_body
first: node1 ok
learnt members: 3
across the route: routed
node1 gone: false true
reconnect: true nil to node2 ok
dead seed, learnt member: true nil node3
--- no_error_log
[alert]



=== TEST 2: lame duck mode: the INFO with ldm is seen, and such a connection is not pooled
--- timeout: 10
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local n = assert(nats:new())
            n:set_timeout(3000)
            assert(n:connect("127.0.0.1", $TEST_NGINX_LDM_PORT))
            assert(n:subscribe("ldm.x", function() end))
            os.execute("kill -USR2 $TEST_NGINX_LDM_PID")
            -- the async INFO arrives while reading
            n:set_timeout(500)
            n:wait(1)
            ngx.say("lame duck seen: ", n:server_info().ldm)
            ngx.say("with a subscription: ", n:set_keepalive(10000, 4))
            n:unsubscribe("1")
            ngx.say("without: ", n:set_keepalive(10000, 4))
            ngx.say("closed: ", n:publish("ldm.x", "y"))
        }
    }
--- request
GET /t
--- response_body
lame duck seen: true
with a subscription: nilsubscribed state
without: nilserver in lame duck mode
closed: falsenot connected
--- error_log
entered lame duck mode



=== TEST 3: a shared connection whose server enters lame duck mode moves to another node: a request in flight gets its late reply, request loops meanwhile lose none, the subscription follows
--- timeout: 20
--- http_config
    init_worker_by_lua_block {
        assert(require("resty.nats").shared("mv", {
            servers = { "nats://127.0.0.1:$TEST_NGINX_MOVEA_PORT" },
            reconnect_wait = 300,
        }))
    }
--- config
    location = /t {
        content_by_lua_block {
            local nats = require "resty.nats"
            local conn = require("t_shared").connected("mv")
            ngx.say("on: ", conn:server_info().server_name)

            -- a responder on B: at once, and one that answers 3 s later (A
            -- closes its clients 2 s after it entered lame duck mode)
            local b = assert(nats:new())
            b:set_timeout(10000)
            assert(b:connect("127.0.0.1", $TEST_NGINX_MOVEB_PORT))
            assert(b:subscribe("mv.echo", function(m) b:publish(m.reply_to, m.payload) end))
            assert(b:subscribe("mv.slow", function(m)
                ngx.timer.at(3, function()
                    local p = assert(nats:new())
                    assert(p:connect("127.0.0.1", $TEST_NGINX_MOVEB_PORT))
                    assert(p:publish(m.reply_to, "late " .. m.payload))
                    p:close()
                end)
            end))
            assert(b:flush())
            local responder = ngx.thread.spawn(function()
                local stop = ngx.now() + 7
                while ngx.now() < stop do b:wait(0.2) end
            end)

            local got = {}
            assert(conn:subscribe("mv.sub", function(m) got[#got + 1] = m.payload end))
            assert(conn:flush())
            ngx.sleep(0.3)   -- B learns the interest over the route

            local slow = ngx.thread.spawn(function()
                return conn:request("mv.slow", "x", { timeout = 5000 })
            end)
            local loops, made, failed = {}, 0, {}
            local stop = ngx.now() + 4
            for i = 1, 10 do
                loops[i] = ngx.thread.spawn(function()
                    while ngx.now() < stop do
                        local m, err = conn:request("mv.echo", tostring(i), { timeout = 3000 })
                        made = made + 1
                        if not m then failed[#failed + 1] = err end
                    end
                end)
            end
            ngx.sleep(0.2)
            os.execute("kill -USR2 $TEST_NGINX_MOVEA_PID")

            local _, m, err = ngx.thread.wait(slow)
            ngx.say("in flight: ", m and m.payload, " ", err)
            for i = 1, 10 do ngx.thread.wait(loops[i]) end
            ngx.say("requests: ", made > 100, " failed: ", #failed, " ", table.concat(failed, ","))

            -- A is gone after its grace period
            ngx.sleep(1.5)
            ngx.say("now on: ", conn:server_info().server_name, " ", conn:stats().reconnects)
            ngx.thread.wait(responder)
            assert(b:publish("mv.sub", "after"))
            assert(b:flush())
            for _ = 1, 100 do
                if #got > 0 then break end
                ngx.sleep(0.02)
            end
            ngx.say("subscription: ", table.concat(got, ","))
        }
    }
--- request
GET /t
--- response_body
on: moveA
in flight: late x nil
requests: true failed: 0 
now on: moveB 0
subscription: after
--- error_log eval
[qr/moved from 127\.0\.0\.1:\d+ to 127\.0\.0\.1:\d+: the server entered lame duck mode/,
 qr/old connection to 127\.0\.0\.1:\d+ closed: (?:nothing in flight|closed|connection reset by peer)/]
--- no_error_log
[alert]
