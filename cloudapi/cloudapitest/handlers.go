package cloudapitest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/hc-agent/hc-agent/cloudapi/labelselector"
)

// locations are the locations the simulator knows, by name.
var locations = map[string]schema.Location{
	"fsn1": {ID: 1, Name: "fsn1", Description: "Falkenstein DC Park 1", Country: "DE", City: "Falkenstein", Latitude: 50.47612, Longitude: 12.370071, NetworkZone: "eu-central"},
	"nbg1": {ID: 2, Name: "nbg1", Description: "Nuremberg DC Park 1", Country: "DE", City: "Nuremberg", Latitude: 49.452102, Longitude: 11.076665, NetworkZone: "eu-central"},
	"hel1": {ID: 3, Name: "hel1", Description: "Helsinki DC Park 1", Country: "FI", City: "Helsinki", Latitude: 60.169855, Longitude: 24.938379, NetworkZone: "eu-central"},
}

func location(name string) schema.Location {
	if l, ok := locations[name]; ok {
		return l
	}
	return schema.Location{Name: name}
}

func (s *Sim) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /floating_ips", s.listFloatingIPs)
	m.HandleFunc("POST /floating_ips", s.createFloatingIP)
	m.HandleFunc("GET /floating_ips/{id}", s.getFloatingIP)
	m.HandleFunc("PUT /floating_ips/{id}", s.updateFloatingIP)
	m.HandleFunc("DELETE /floating_ips/{id}", s.deleteFloatingIP)
	m.HandleFunc("POST /floating_ips/{id}/actions/assign", s.assign)
	m.HandleFunc("POST /floating_ips/{id}/actions/unassign", s.unassign)
	m.HandleFunc("GET /floating_ips/{id}/actions", s.listFloatingIPActions)
	m.HandleFunc("GET /floating_ips/{id}/actions/{action_id}", s.getFloatingIPAction)
	m.HandleFunc("GET /floating_ips/actions", s.listFloatingIPActions)
	m.HandleFunc("GET /actions", s.listActions)
	m.HandleFunc("GET /actions/{id}", s.getAction)
	m.HandleFunc("GET /servers", s.listServers)
	m.HandleFunc("GET /servers/{id}", s.getServer)
	m.HandleFunc("POST /servers/{id}/actions/change_alias_ips", s.changeAliasIPs)
	m.HandleFunc("GET /networks", s.listNetworks)
	m.HandleFunc("GET /networks/{id}", s.getNetwork)
	m.HandleFunc("POST /networks/{id}/actions/add_route", s.addRoute)
	m.HandleFunc("POST /networks/{id}/actions/delete_route", s.deleteRoute)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, http.StatusNotFound, "not_found", "not found", nil)
	})
	s.mux = m
}

// pagination mirrors meta.pagination with the nullable fields of the
// reference (hcloud-go's schema uses plain ints, which decode null as 0).
type pagination struct {
	Page         int  `json:"page"`
	PerPage      int  `json:"per_page"`
	PreviousPage *int `json:"previous_page"`
	NextPage     *int `json:"next_page"`
	LastPage     *int `json:"last_page"`
	TotalEntries *int `json:"total_entries"`
}

type meta struct {
	Pagination pagination `json:"pagination"`
}

// page validates page/per_page, sets the Link header and returns the slice
// bounds and meta for total items.
func (s *Sim) page(w http.ResponseWriter, r *http.Request, total int) (lo, hi int, m *meta, ok bool) {
	q := r.URL.Query()
	pg, per := 1, 25
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.invalidInput(w, "page", "must be a positive integer")
			return 0, 0, nil, false
		}
		pg = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.invalidInput(w, "per_page", "must be a positive integer")
			return 0, 0, nil, false
		}
		per = min(n, 50)
	}
	last := max(1, (total+per-1)/per)
	p := pagination{Page: pg, PerPage: per, LastPage: &last, TotalEntries: &total}
	var links []string
	link := func(n int, rel string) {
		u := url.URL{Scheme: "http", Host: r.Host, Path: s.prefix + r.URL.Path}
		qq := r.URL.Query()
		qq.Set("page", strconv.Itoa(n))
		qq.Set("per_page", strconv.Itoa(per))
		u.RawQuery = qq.Encode()
		links = append(links, fmt.Sprintf("<%s>; rel=%q", u.String(), rel))
	}
	if pg > 1 {
		prev := min(pg-1, last)
		p.PreviousPage = &prev
		link(prev, "prev")
	}
	if pg < last {
		next := pg + 1
		p.NextPage = &next
		link(next, "next")
	}
	link(last, "last")
	w.Header().Set("Link", strings.Join(links, ", "))
	lo = min((pg-1)*per, total)
	hi = min(lo+per, total)
	return lo, hi, &meta{Pagination: p}, true
}

// sortBy sorts items by the sort parameters, falling back to ID ascending.
func (s *Sim) getServer(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	srv, ok := lookupLocked(s, w, r, s.servers, "server")
	if !ok {
		s.mu.Unlock()
		return
	}
	body := schema.ServerGetResponse{Server: s.serverJSONLocked(srv)}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, body)
}

// lookupLocked finds the resource of the request's {id} path value in
// resources, answering 400 for a bad ID and 404 (naming what) for an
// unknown one. The caller holds s.mu.
func lookupLocked[T any](s *Sim, w http.ResponseWriter, r *http.Request, resources map[int64]T, what string) (T, bool) {
	var zero T
	id, ok := s.pathID(w, r, "id")
	if !ok {
		return zero, false
	}
	v, ok := resources[id]
	if !ok {
		s.writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s with ID %d not found", what, id), nil)
		return zero, false
	}
	return v, true
}

// listJSON answers a list request: the resources that match, sorted by
// the request's sort fields (those of sorts) and paged, as JSON under key
// with the pagination meta, as the API lists every kind of resource.
func listJSON[T, J any](s *Sim, w http.ResponseWriter, r *http.Request, key string, resources map[int64]T,
	match func(T) bool, sorts map[string]func(a, b T) int, toJSON func(T) J) {
	s.mu.Lock()
	var items []T
	for _, v := range resources {
		if match(v) {
			items = append(items, v)
		}
	}
	if err := sortBy(items, r.URL.Query()["sort"], sorts); err != nil {
		s.mu.Unlock()
		s.invalidInput(w, "sort", err.Error())
		return
	}
	lo, hi, m, ok := s.page(w, r, len(items))
	if !ok {
		s.mu.Unlock()
		return
	}
	out := make([]J, 0, hi-lo)
	for _, v := range items[lo:hi] {
		out = append(out, toJSON(v))
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, map[string]any{key: out, "meta": m})
}

func sortBy[T any](items []T, sorts []string, fields map[string]func(a, b T) int) error {
	var cmps []func(a, b T) int
	for _, so := range sorts {
		field, dir, _ := strings.Cut(so, ":")
		c, ok := fields[field]
		if !ok || (dir != "" && dir != "asc" && dir != "desc") {
			return fmt.Errorf("invalid sort %q", so)
		}
		if dir == "desc" {
			asc := c
			c = func(a, b T) int { return -asc(a, b) }
		}
		cmps = append(cmps, c)
	}
	cmps = append(cmps, fields["id"])
	slices.SortStableFunc(items, func(a, b T) int {
		for _, c := range cmps {
			if r := c(a, b); r != 0 {
				return r
			}
		}
		return 0
	})
	return nil
}

func (s *Sim) selector(w http.ResponseWriter, r *http.Request) (labelselector.Selector, bool) {
	sel, err := labelselector.Parse(r.URL.Query().Get("label_selector"))
	if err != nil {
		s.invalidInput(w, "label_selector", err.Error())
		return sel, false
	}
	return sel, true
}

func (s *Sim) pathID(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id < 1 {
		s.invalidInput(w, name, "must be a positive integer")
		return 0, false
	}
	return id, true
}

func (s *Sim) fipJSONLocked(f *fipState) schema.FloatingIP {
	out := schema.FloatingIP{
		ID:           f.ID,
		Description:  &f.Description,
		Created:      f.created,
		Type:         f.Type,
		DNSPtr:       []schema.FloatingIPDNSPtr{},
		HomeLocation: location(f.HomeLocation),
		Blocked:      f.Blocked,
		Labels:       cloneLabels(f.Labels),
		Name:         f.Name,
	}
	d := f.Description
	out.Description = &d
	if f.Type == "ipv6" {
		out.IP = f.Prefix.Masked().String()
	} else {
		out.IP = f.Prefix.Addr().String()
	}
	if f.ServerID != 0 {
		id := f.ServerID
		out.Server = &id
	}
	return out
}

func (s *Sim) listFloatingIPs(w http.ResponseWriter, r *http.Request) {
	sel, ok := s.selector(w, r)
	if !ok {
		return
	}
	name := r.URL.Query().Get("name")
	listJSON(s, w, r, "floating_ips", s.fips,
		func(f *fipState) bool { return (name == "" || f.Name == name) && sel.Matches(f.Labels) },
		map[string]func(a, b *fipState) int{
			"id":      func(a, b *fipState) int { return cmp.Compare(a.ID, b.ID) },
			"created": func(a, b *fipState) int { return a.created.Compare(b.created) },
		}, s.fipJSONLocked)
}

func (s *Sim) getFloatingIP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f, ok := lookupLocked(s, w, r, s.fips, "floating ip")
	if !ok {
		s.mu.Unlock()
		return
	}
	body := schema.FloatingIPGetResponse{FloatingIP: s.fipJSONLocked(f)}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, body)
}

func decode(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

func (s *Sim) jsonError(w http.ResponseWriter, err error) {
	s.writeError(w, http.StatusBadRequest, "json_error", "invalid JSON: "+err.Error(), nil)
}

func (s *Sim) nameTakenLocked(name string, except int64) bool {
	for _, f := range s.fips {
		if f.Name == name && f.ID != except {
			return true
		}
	}
	return false
}

func (s *Sim) createFloatingIP(w http.ResponseWriter, r *http.Request) {
	var req schema.FloatingIPCreateRequest
	if err := decode(r, &req); err != nil {
		s.jsonError(w, err)
		return
	}
	if req.Type != "ipv4" && req.Type != "ipv6" {
		s.invalidInput(w, "type", "must be ipv4 or ipv6")
		return
	}
	if (req.HomeLocation == nil) == (req.Server == nil) {
		s.invalidInput(w, "home_location", "exactly one of home_location and server is required")
		return
	}
	f := FloatingIP{Type: req.Type}
	if req.Labels != nil {
		if err := labelselector.ValidateLabels(*req.Labels); err != nil {
			s.invalidInput(w, "labels", err.Error())
			return
		}
		f.Labels = *req.Labels
	}
	if req.Description != nil {
		f.Description = *req.Description
	}
	s.hookMu.Lock() // until the hooks below returned
	defer s.hookMu.Unlock()
	s.mu.Lock()
	if req.Name != nil {
		if s.nameTakenLocked(*req.Name, 0) {
			s.mu.Unlock()
			s.writeError(w, http.StatusConflict, "uniqueness_error", "name is already used", map[string]any{"fields": []map[string]string{{"name": "name"}}})
			return
		}
		f.Name = *req.Name
	}
	if req.HomeLocation != nil {
		if _, ok := locations[*req.HomeLocation]; !ok {
			s.mu.Unlock()
			s.invalidInput(w, "home_location", "unknown location")
			return
		}
		f.HomeLocation = *req.HomeLocation
	}
	var resources []schema.ActionResourceReference
	if req.Server != nil {
		srv, ok := s.servers[*req.Server]
		if !ok {
			s.mu.Unlock()
			s.invalidInput(w, "server", "server not found")
			return
		}
		f.HomeLocation = srv.Location
		resources = append(resources, schema.ActionResourceReference{ID: srv.ID, Type: "server"})
	}
	id := s.addFloatingIPLocked(f)
	st := s.fips[id]
	resources = append(resources, schema.ActionResourceReference{ID: id, Type: "floating_ip"})
	var target int64
	if req.Server != nil {
		target = *req.Server
	}
	// Creation is immediate and never fails in the simulator.
	a := s.newActionLocked("create_floating_ip", nil, 0, resources, 0, false)
	calls := s.finishLocked(a)
	if target != 0 {
		st.ServerID = target
		p := st.Prefix
		for _, fn := range s.onAssign {
			calls = append(calls, func() { fn(id, target, p) })
		}
	}
	body := schema.FloatingIPCreateResponse{FloatingIP: s.fipJSONLocked(st)}
	act := s.actionJSONLocked(a)
	body.Action = &act
	s.mu.Unlock()
	for _, c := range calls {
		c()
	}
	s.writeJSON(w, http.StatusCreated, body)
}

func (s *Sim) updateFloatingIP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Description *string            `json:"description"`
		Labels      *map[string]string `json:"labels"`
		Name        *string            `json:"name"`
	}
	if err := decode(r, &req); err != nil {
		s.jsonError(w, err)
		return
	}
	if req.Labels != nil {
		if err := labelselector.ValidateLabels(*req.Labels); err != nil {
			s.invalidInput(w, "labels", err.Error())
			return
		}
	}
	s.mu.Lock()
	f, ok := lookupLocked(s, w, r, s.fips, "floating ip")
	if !ok {
		s.mu.Unlock()
		return
	}
	if req.Name != nil {
		if s.nameTakenLocked(*req.Name, f.ID) {
			s.mu.Unlock()
			s.writeError(w, http.StatusConflict, "uniqueness_error", "name is already used", map[string]any{"fields": []map[string]string{{"name": "name"}}})
			return
		}
		f.Name = *req.Name
	}
	if req.Description != nil {
		f.Description = *req.Description
	}
	if req.Labels != nil {
		f.Labels = cloneLabels(*req.Labels)
	}
	body := schema.FloatingIPUpdateResponse{FloatingIP: s.fipJSONLocked(f)}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, body)
}

func (s *Sim) lockedError(w http.ResponseWriter, f *fipState) {
	s.writeError(w, http.StatusLocked, "locked", fmt.Sprintf("floating ip %d is locked: action %d is running", f.ID, f.running), nil)
}

func (s *Sim) deleteFloatingIP(w http.ResponseWriter, r *http.Request) {
	s.hookMu.Lock() // until the hooks below returned
	defer s.hookMu.Unlock()
	s.mu.Lock()
	f, ok := lookupLocked(s, w, r, s.fips, "floating ip")
	if !ok {
		s.mu.Unlock()
		return
	}
	if f.running != 0 {
		s.mu.Unlock()
		s.lockedError(w, f)
		return
	}
	delete(s.fips, f.ID)
	var calls []func()
	if f.ServerID != 0 {
		id, p := f.ID, f.Prefix
		for _, fn := range s.onAssign {
			calls = append(calls, func() { fn(id, 0, p) })
		}
	}
	s.mu.Unlock()
	for _, c := range calls {
		c()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sim) assign(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Server *int64 `json:"server"`
	}
	if err := decode(r, &req); err != nil {
		s.jsonError(w, err)
		return
	}
	if req.Server == nil {
		s.invalidInput(w, "server", "is required")
		return
	}
	s.floatingIPAction(w, r, "assign_floating_ip", *req.Server)
}

func (s *Sim) unassign(w http.ResponseWriter, r *http.Request) {
	if err := decode(r, &struct{}{}); err != nil {
		s.jsonError(w, err)
		return
	}
	s.floatingIPAction(w, r, "unassign_floating_ip", 0)
}

func (s *Sim) floatingIPAction(w http.ResponseWriter, r *http.Request, command string, target int64) {
	s.hookMu.Lock() // until the hooks below returned
	defer s.hookMu.Unlock()
	s.mu.Lock()
	f, ok := lookupLocked(s, w, r, s.fips, "floating ip")
	if !ok {
		s.mu.Unlock()
		return
	}
	var resources []schema.ActionResourceReference
	if command == "assign_floating_ip" {
		if _, ok := s.servers[target]; !ok {
			s.mu.Unlock()
			s.writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("server with ID %d not found", target), nil)
			return
		}
		resources = append(resources, schema.ActionResourceReference{ID: target, Type: "server"})
	} else if f.ServerID != 0 {
		resources = append(resources, schema.ActionResourceReference{ID: f.ServerID, Type: "server"})
	}
	if f.running != 0 {
		s.mu.Unlock()
		s.lockedError(w, f)
		return
	}
	resources = append(resources, schema.ActionResourceReference{ID: f.ID, Type: "floating_ip"})
	a := s.startActionLocked(command, f, target, resources)
	var calls []func()
	if a.delay <= 0 {
		calls = s.finishLocked(a)
	}
	body := schema.ActionGetResponse{Action: s.actionJSONLocked(a)}
	s.mu.Unlock()
	for _, c := range calls {
		c()
	}
	s.writeJSON(w, http.StatusCreated, body)
}

// listActionsFiltered serves a list of actions that pass keep, with the id,
// status and sort parameters of the reference.
func (s *Sim) listActionsFiltered(w http.ResponseWriter, r *http.Request, keep func(*actionState) bool) {
	q := r.URL.Query()
	ids := map[int64]bool{}
	for _, v := range q["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.invalidInput(w, "id", "must be an integer")
			return
		}
		ids[id] = true
	}
	statuses := map[string]bool{}
	for _, v := range q["status"] {
		if v != "running" && v != "success" && v != "error" {
			s.invalidInput(w, "status", "must be running, success or error")
			return
		}
		statuses[v] = true
	}
	s.mu.Lock()
	var items []schema.Action
	for _, a := range s.actions {
		if !keep(a) || (len(ids) > 0 && !ids[a.ID]) || (len(statuses) > 0 && !statuses[a.Status]) {
			continue
		}
		items = append(items, s.actionJSONLocked(a))
	}
	s.mu.Unlock()
	finished := func(a schema.Action) int64 {
		if a.Finished == nil {
			return 1<<63 - 1
		}
		return a.Finished.UnixNano()
	}
	err := sortBy(items, q["sort"], map[string]func(a, b schema.Action) int{
		"id":       func(a, b schema.Action) int { return cmp.Compare(a.ID, b.ID) },
		"command":  func(a, b schema.Action) int { return cmp.Compare(a.Command, b.Command) },
		"status":   func(a, b schema.Action) int { return cmp.Compare(a.Status, b.Status) },
		"started":  func(a, b schema.Action) int { return a.Started.Compare(b.Started) },
		"finished": func(a, b schema.Action) int { return cmp.Compare(finished(a), finished(b)) },
	})
	if err != nil {
		s.invalidInput(w, "sort", err.Error())
		return
	}
	lo, hi, m, ok := s.page(w, r, len(items))
	if !ok {
		return
	}
	s.writeJSON(w, http.StatusOK, struct {
		Actions []schema.Action `json:"actions"`
		Meta    *meta           `json:"meta"`
	}{append([]schema.Action{}, items[lo:hi]...), m})
}

func (s *Sim) listActions(w http.ResponseWriter, r *http.Request) {
	s.listActionsFiltered(w, r, func(*actionState) bool { return true })
}

func (s *Sim) listFloatingIPActions(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") == "" {
		s.listActionsFiltered(w, r, func(a *actionState) bool { return a.fipID != 0 })
		return
	}
	s.mu.Lock()
	f, ok := lookupLocked(s, w, r, s.fips, "floating ip")
	s.mu.Unlock()
	if !ok {
		return
	}
	s.listActionsFiltered(w, r, func(a *actionState) bool { return a.fipID == f.ID })
}

func (s *Sim) writeAction(w http.ResponseWriter, r *http.Request, name string, keep func(*actionState) bool) {
	id, ok := s.pathID(w, r, name)
	if !ok {
		return
	}
	s.mu.Lock()
	a, ok := s.actions[id]
	if !ok || !keep(a) {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("action with ID %d not found", id), nil)
		return
	}
	body := schema.ActionGetResponse{Action: s.actionJSONLocked(a)}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, body)
}

func (s *Sim) getAction(w http.ResponseWriter, r *http.Request) {
	s.writeAction(w, r, "id", func(*actionState) bool { return true })
}

func (s *Sim) getFloatingIPAction(w http.ResponseWriter, r *http.Request) {
	fid, ok := s.pathID(w, r, "id")
	if !ok {
		return
	}
	s.writeAction(w, r, "action_id", func(a *actionState) bool { return a.fipID == fid })
}

func (s *Sim) serverJSONLocked(srv *Server) schema.Server {
	out := schema.Server{
		ID:            srv.ID,
		Name:          srv.Name,
		Status:        srv.Status,
		Created:       s.created,
		PrivateNet:    []schema.ServerPrivateNet{},
		ServerType:    schema.ServerType{ID: 1, Name: "cx22", Description: "CX22", Cores: 2, Memory: 4, Disk: 40, StorageType: "local", CPUType: "shared", Architecture: "x86"},
		Location:      location(srv.Location),
		Labels:        cloneLabels(srv.Labels),
		Volumes:       []int64{},
		LoadBalancers: []int64{},
		PublicNet: schema.ServerPublicNet{
			FloatingIPs: []int64{},
			Firewalls:   []schema.ServerFirewall{},
			IPv6:        schema.ServerPublicNetIPv6{DNSPtr: []schema.ServerPublicNetIPv6DNSPtr{}},
		},
	}
	if srv.PublicIPv4.IsValid() {
		out.PublicNet.IPv4 = schema.ServerPublicNetIPv4{ID: srv.ID*10 + 4, IP: srv.PublicIPv4.String()}
	}
	if srv.PublicIPv6.IsValid() {
		out.PublicNet.IPv6.ID = srv.ID*10 + 6
		out.PublicNet.IPv6.IP = srv.PublicIPv6.Masked().String()
	}
	for _, f := range s.fips {
		if f.ServerID == srv.ID {
			out.PublicNet.FloatingIPs = append(out.PublicNet.FloatingIPs, f.ID)
		}
	}
	slices.Sort(out.PublicNet.FloatingIPs)
	for _, pn := range srv.PrivateNets {
		n := schema.ServerPrivateNet{Network: pn.NetworkID, IP: addrString(pn.IP), AliasIPs: []string{}, MACAddress: pn.MACAddress}
		for _, a := range pn.AliasIPs {
			n.AliasIPs = append(n.AliasIPs, a.String())
		}
		out.PrivateNet = append(out.PrivateNet, n)
	}
	return out
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func (s *Sim) listServers(w http.ResponseWriter, r *http.Request) {
	sel, ok := s.selector(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	name := q.Get("name")
	statuses := map[string]bool{}
	for _, v := range q["status"] {
		statuses[v] = true
	}
	listJSON(s, w, r, "servers", s.servers,
		func(srv *Server) bool {
			return (name == "" || srv.Name == name) && (len(statuses) == 0 || statuses[srv.Status]) && sel.Matches(srv.Labels)
		},
		map[string]func(a, b *Server) int{
			"id":      func(a, b *Server) int { return cmp.Compare(a.ID, b.ID) },
			"name":    func(a, b *Server) int { return cmp.Compare(a.Name, b.Name) },
			"created": func(a, b *Server) int { return 0 },
		}, s.serverJSONLocked)
}
