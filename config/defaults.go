package config

import "go.yaml.in/yaml/v3"

// applyDefaults fills what the strict decode could not: Parse decodes into
// Default(), so absent top-level keys already hold their defaults, but group
// entries start as zero values. For them the document itself tells which
// keys were written, so that an explicit "priority: 0" stays 0 while an
// absent priority becomes 100.
func applyDefaults(c *Config, root *yaml.Node) {
	d := Default()
	defaultString(&c.Log.Level, d.Log.Level)
	defaultString(&c.Log.Format, d.Log.Format)
	defaultString(&c.StateDir, d.StateDir)
	defaultString(&c.RuntimeDir, d.RuntimeDir)
	defaultString(&c.SMBIOSSerialFile, d.SMBIOSSerialFile)
	defaultString(&c.Metadata.Endpoint, d.Metadata.Endpoint)
	defaultString(&c.API.Endpoint, d.API.Endpoint)
	defaultString(&c.FloatingIPs.IPv6Host, d.FloatingIPs.IPv6Host)
	defaultString(&c.Metrics.Listen, d.Metrics.Listen)
	// An explicit null sets a pointer to nil.
	if c.PrivateNetworks.Enabled == nil {
		c.PrivateNetworks.Enabled = d.PrivateNetworks.Enabled
	}
	if c.FloatingIPs.Enabled == nil {
		c.FloatingIPs.Enabled = d.FloatingIPs.Enabled
	}

	// "key: []" and an absent key mean the same; keep one representation.
	c.PrivateNetworks.Exclude = nilIfEmpty(c.PrivateNetworks.Exclude)
	if len(c.Groups) == 0 {
		c.Groups = nil
	}

	var groups []*yaml.Node
	if seq := lookup(docContent(root), "groups"); seq != nil && seq.Kind == yaml.SequenceNode {
		groups = seq.Content
	}
	for i := range c.Groups {
		var n *yaml.Node
		if i < len(groups) {
			n = groups[i]
		}
		applyGroupDefaults(&c.Groups[i], n)
	}
}

func applyGroupDefaults(g *Group, n *yaml.Node) {
	d := DefaultGroup()
	set := setKeys(n)
	if !set["priority"] {
		g.Priority = d.Priority
	}
	if !set["port"] {
		g.Port = d.Port
	}
	if !set["preempt_delay"] {
		g.PreemptDelay = d.PreemptDelay
	}
	if !set["max_moves_per_minute"] {
		g.MaxMovesPerMinute = d.MaxMovesPerMinute
	}
	defaultString(&g.Mode, d.Mode)
	g.FloatingIPs = nilIfEmpty(g.FloatingIPs)
	if len(g.PrivateIPs) == 0 {
		g.PrivateIPs = nil
	}
	g.Peers = nilIfEmpty(g.Peers)
	g.Health.Command = nilIfEmpty(g.Health.Command)

	h := setKeys(lookup(resolve(n), "health"))
	defaultString(&g.Health.Type, d.Health.Type)
	if !h["interval"] {
		g.Health.Interval = d.Health.Interval
	}
	if !h["timeout"] {
		g.Health.Timeout = d.Health.Timeout
	}
	if !h["rise"] {
		g.Health.Rise = d.Health.Rise
	}
	if !h["fall"] {
		g.Health.Fall = d.Health.Fall
	}
}

func defaultString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// docContent returns the top-level node of a document.
func docContent(root *yaml.Node) *yaml.Node {
	root = resolve(root)
	if root != nil && root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		return resolve(root.Content[0])
	}
	return root
}

// resolve follows aliases (bounded, since a document can be hostile).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

// lookup returns the value of key in mapping n, following merge keys.
func lookup(n *yaml.Node, key string) *yaml.Node {
	var found *yaml.Node
	eachKey(n, func(k string, v *yaml.Node) {
		if k == key && found == nil {
			found = v
		}
	})
	return found
}

// setKeys returns the keys of mapping n (merge keys included) whose value
// is not null: a null value means "default", as it does for top-level keys.
func setKeys(n *yaml.Node) map[string]bool {
	set := map[string]bool{}
	eachKey(n, func(k string, v *yaml.Node) {
		if v != nil && !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
			set[k] = true
		}
	})
	return set
}

// eachKey calls fn for each key of mapping n, direct keys first, then the
// keys brought in by "<<" merge keys (direct keys win in yaml, and fn users
// take the first occurrence). Each mapping is visited once, so merges of
// aliases cannot blow up ("billion laughs").
func eachKey(n *yaml.Node, fn func(key string, value *yaml.Node)) {
	seen := map[*yaml.Node]bool{}
	var visit func(n *yaml.Node)
	visit = func(n *yaml.Node) {
		n = resolve(n)
		if n == nil || n.Kind != yaml.MappingNode || seen[n] {
			return
		}
		seen[n] = true
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], resolve(n.Content[i+1])
			if k.Tag == "!!merge" {
				merges = append(merges, v)
				continue
			}
			fn(k.Value, v)
		}
		for _, m := range merges {
			if m != nil && m.Kind == yaml.SequenceNode {
				for _, e := range m.Content {
					visit(e)
				}
				continue
			}
			visit(m)
		}
	}
	visit(n)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
