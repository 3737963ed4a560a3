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
$ENV{TEST_NGINX_LDM_PORT} = $ldm->port;
$ENV{TEST_NGINX_LDM_PID} = $ldm->{pid};

# the routes need a moment to form (connect_urls come with them)
sleep 2;

repeat_each(1);
no_shuffle();
plan tests => repeat_each() * (3 * blocks());
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
