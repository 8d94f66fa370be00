// Package simcloud is a simulated Hetzner Cloud built from network
// namespaces and veth pairs, for end-to-end tests, the demo (cmd/hc-demo)
// and benchmarks. It needs root; everything it builds lives inside
// namespaces it creates, so no traffic ever leaves them.
//
// # Topology
//
//	                      client ns
//	                   eth0 192.0.2.2/24, 2001:db8:c::2/64
//	                           |
//	cloud ns ---------------- client (192.0.2.1/24)
//	| lo: 169.254.169.254 (metadata service, per caller)
//	|     203.0.113.254   (API simulator, APIEndpoint)
//	| br-pub: 172.31.1.1/32, fe80::1   (public bridge + router)
//	|   routes: 203.0.113.N/32 dev br-pub, 2001:db8:1:N::/64 dev br-pub,
//	|           floating IP via the holder's public address
//	+-- p1 ----------- eth0 96:00:00:00:00:01  server ns "alpha"
//	|                    203.0.113.11/32, 2001:db8:1:1::1/64
//	|                    default via 172.31.1.1 (on-link), via fe80::1
//	+-- p2 ----------- eth0 96:00:00:00:00:02  server ns "beta" ...
//
//	net1 ns (router of private network "net-a", 10.0.0.0/16)
//	| lo: 10.0.0.1/32 (gateway; answers ARP on every veth)
//	| routes: 10.0.0.2/32 dev s1, alias IPs of alpha dev s1, ...
//	| partition rules: iif s1 to <beta's addresses> blackhole
//	+-- s1 ----------- ens10 86:00:00:01:00:01 (MTU 1450) in alpha
//	+-- s2 ----------- ens10 86:00:00:02:00:02 (MTU 1450) in beta
//
// The public network is routed, as on Hetzner Cloud: each server has its
// public IPv4 as a /32 with the on-link gateway 172.31.1.1, and all public
// ports sit on one bridge in the cloud namespace, which routes each
// server's /32 (and IPv6 /64) to it. A floating IP is a route in the cloud
// namespace via the holder's public address, so only an assignment moves
// it (a gratuitous ARP does not); unassigned, it has no route and clients
// get "unreachable". The server's public addresses and routes are
// configured as the image would; floating IPs on the server are the
// agent's job (Server.ConfigureFloatingIP does it for tests without one).
//
// Private networks are layer 3: each has a router namespace holding the
// gateway (.1 of the subnet) and one veth per attached server. A server's
// private NIC is named ens<9+interface_num>, has a 86:00:00 MAC and MTU
// 1450, and appears down and unconfigured (configuring it is hc-agent's
// job) unless the server was created with ServerSpec.ConfigurePrivate.
// Servers reach each other only through the gateway.
//
// Private VIPs follow the API simulator (ConnectAPI), as on Hetzner Cloud:
// an alias IP is a /32 route in the network's router to the veth of the
// server whose attachment holds it, changed when a change_alias_ips action
// succeeds (the metadata follows after WithMetadataLag); a network route
// (a route VIP, inside the network but outside the subnet) is a route in
// the router via the gateway server's private IP, on-link through its
// veth, changed when add_route or delete_route succeeds. AddPrivateClient
// adds a server that only probes them. StartSourceRecorder records the
// source address of connections to the client namespace (egress checks).
//
// The metadata service at 169.254.169.254 identifies the caller by its TCP
// source address (public IPv4 or IPv6, a private or alias IP, or a
// floating IP it holds) and answers with that server's own summary and
// private networks; any other caller gets 404.
//
// # Names and cleanup
//
// Namespaces are named hcs-<pid>-<run>-<role> (RunPrefix), for example
// hcs-4242-1-cloud, hcs-4242-1-alpha, hcs-4242-1-net1 and
// hcs-4242-1-client. New first removes namespaces whose owner PID is dead
// (and kills processes left in them). Close kills every process started
// with Server.Start (SIGKILL, then waits for it) and every other process
// inside the namespaces, stops the services and deletes the namespaces,
// which deletes all veths and the bridge. Close is idempotent: call it from
// t.Cleanup, a deferred call and a signal handler. Leftovers reports what
// is still there (nothing, after Close). Processes also get SIGKILL from
// the kernel if this process dies first (PR_SET_PDEATHSIG).
//
// # Use
//
//	func TestMain(m *testing.M) {
//		simcloud.RunHelper() // runs the name service when re-executed as it
//		os.Exit(m.Run())
//	}
//
//	c, err := simcloud.New(ctx, simcloud.WithLogger(log))
//	defer c.Close()
//	c.AddNetwork(simcloud.NetworkSpec{Name: "net-a",
//		Network: netip.MustParsePrefix("10.0.0.0/16"),
//		Subnet:  netip.MustParsePrefix("10.0.0.0/24")})
//	a, _ := c.AddServer(simcloud.ServerSpec{Name: "alpha", Networks: []string{"net-a"},
//		Labels: map[string]string{"group": "web"}})
//	vip, _ := c.AddFloatingIP(simcloud.FloatingIPSpec{Name: "vip"})
//	sim := cloudapitest.New(cloudapitest.WithTokens(token))
//	c.ConnectAPI(sim) // API at c.APIEndpoint(); assign actions move routes
//	a.StartNameService(ctx, 80)                   // answers "alpha"
//	agent, _ := a.Start(ctx, "hc-agent", []string{bin, "run", "--config", cfg},
//		[]string{"HCLOUD_TOKEN=" + token, "HCLOUD_ENDPOINT=" + c.APIEndpoint()})
//	probe := c.StartProbe(ctx, vip.URL(), 20*time.Millisecond, 200*time.Millisecond)
//	c.Crash("alpha")
//	...
//	o, _ := simcloud.LongestOutage(probe.Stop())
//
// Runtime operations: AttachNetwork and DetachNetwork (hotplug; metadata
// follows after WithMetadataLag), SetAliasIPs, Crash and Restore, Pause
// (SIGSTOP all of a server's processes for a while), Partition and Heal
// (private network), RouteFloatingIP and OnAssign (the API simulator's
// hook). From outside, Cloud.Get/Client/StartProbe use the client
// namespace; Server.Get/HTTPClient/Do/Exec act from inside a server.
package simcloud
