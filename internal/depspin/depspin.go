// Package depspin keeps the agreed dependencies in go.mod while the packages
// that use them are being written. It is deleted once they all import them.
package depspin

import (
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/hetznercloud/hcloud-go/v2/hcloud"
	_ "github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/stretchr/testify/assert"
	_ "github.com/stretchr/testify/require"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sys/unix"
	_ "golang.org/x/time/rate"
)
