package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/hc-agent/hc-agent/internal/bench"
	"github.com/hc-agent/hc-agent/internal/bench/keepalived"
	"github.com/hc-agent/hc-agent/internal/simcloud"
)

// subject is what holds the floating IP in an outage scenario: hc-agent or
// the keepalived baseline. The scenario crashes or stops the holder; the
// subject starts its process on a server and knows when that server has
// rejoined as a standby.
type subject interface {
	name() string
	// start starts the subject on s.
	start(ctx context.Context, s *simcloud.Server) error
	// waitSettled waits until every server runs the subject and agrees on
	// one holder.
	waitSettled(ctx context.Context) error
	// stop ends the subject on s gracefully (SIGTERM) and waits for it.
	stop(ctx context.Context, s *simcloud.Server) error
	// reap forgets the subject's process on a crashed server s, waiting
	// for it to be gone.
	reap(s *simcloud.Server)
}

// agentSubject runs hc-agent.
type agentSubject struct{ c *cluster }

func (a agentSubject) name() string { return bench.SubjectAgent }

func (a agentSubject) start(ctx context.Context, s *simcloud.Server) error {
	_, err := a.c.startAgent(ctx, s)
	return err
}

func (a agentSubject) waitSettled(ctx context.Context) error {
	return a.c.waitAgentsSettled(ctx, 60*time.Second)
}

func (a agentSubject) stop(ctx context.Context, s *simcloud.Server) error {
	return a.c.stopAgent(ctx, s)
}

func (a agentSubject) reap(s *simcloud.Server) {
	if p := a.c.agents[s.Name()]; p != nil {
		_ = p.Kill()
		_ = p.Wait()
		delete(a.c.agents, s.Name())
	}
}

// keepalivedSubject runs the baseline: keepalived with unicast VRRP over
// the first private network and the notify script that calls the API.
type keepalivedSubject struct{ c *cluster }

func (k keepalivedSubject) name() string { return bench.SubjectKeepalived }

func (k keepalivedSubject) start(ctx context.Context, s *simcloud.Server) error {
	c := k.c
	return c.startKeepalived(s, func(dir, headers string) (string, error) {
		return keepalived.Script{
			Endpoint: c.cloud.APIEndpoint(), HeaderFile: headers, FloatingIPID: c.fip.ID(),
			ServerID: s.ID(), LogFile: filepath.Join(dir, "notify.log"),
		}.Render()
	}, c.fip.HostPrefix(), s.PublicNIC())
}

// startKeepalived starts a baseline keepalived on s: unicast VRRP over the
// first private network with the other servers as peers, the VIP on
// vipDevice ("" is the private NIC), and the notify script that render
// returns, given the keepalived directory and the API header file.
func (c *cluster) startKeepalived(s *simcloud.Server, render func(dir, headers string) (string, error), vip netip.Prefix, vipDevice string) error {
	i := c.index(s)
	dir := filepath.Join(c.dir, s.Name(), "keepalived")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create keepalived directory for %s: %w", s.Name(), err)
	}
	_, nets := s.Metadata()
	if len(nets) == 0 {
		return fmt.Errorf("start keepalived on %s: no private network", s.Name())
	}
	nic, err := privateNIC(s, nets[0].MACAddress)
	if err != nil {
		return err
	}
	if vipDevice == "" {
		vipDevice = nic
	}
	headers := filepath.Join(dir, "headers")
	if err := os.WriteFile(headers, []byte("Authorization: Bearer "+token(i)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write API header file for %s: %w", s.Name(), err)
	}
	script := filepath.Join(dir, "notify.sh")
	text, err := render(dir, headers)
	if err != nil {
		return err
	}
	if err := os.WriteFile(script, []byte(text), 0o700); err != nil {
		return fmt.Errorf("write notify script for %s: %w", s.Name(), err)
	}
	var peers []netip.Addr
	for _, p := range c.servers {
		if p != s {
			ip, err := privateIP(p)
			if err != nil {
				return err
			}
			peers = append(peers, ip)
		}
	}
	conf, err := keepalived.Config{
		RouterID: s.Name(), Interface: nic, Priority: 150 - 50*i,
		SrcIP: nets[0].IP, Peers: peers,
		VIP: vip, VIPDevice: vipDevice, NotifyMaster: script,
	}.Render()
	if err != nil {
		return err
	}
	p, err := keepalived.Start(s.NetNS(), dir, conf, c.env.Log.With("server", s.Name()))
	if err != nil {
		return err
	}
	c.kas[s.Name()] = p
	go c.watchKA(p)
	return nil
}

// kaSettleTimeout bounds the wait for keepalived to settle; a cluster that
// does not within it is inconsistent and gets reset by the caller.
const kaSettleTimeout = 30 * time.Second

// kaSettleStable is how long a keepalived cluster must stay settled before
// a trial: longer than a notify script's assign and action wait (1 s
// actions, polled every second).
const kaSettleStable = 2500 * time.Millisecond

// waitSettled waits until the holder by the API is keepalived's MASTER and
// every other keepalived is BACKUP. Accepting any MASTER or BACKUP is not
// enough: a standby that raced to MASTER, or whose notify script is still
// moving the address, would make the next trial's outage start before the
// crash. The API holder changes without a keepalived log line (the notify
// script finishes later), so the condition is polled.
func (k keepalivedSubject) waitSettled(ctx context.Context) error {
	return k.c.waitKeepalivedSettled(ctx, func() string { return k.c.cloud.Holder(k.c.fip) })
}

// waitKeepalivedSettled waits until holder (by the API) is keepalived's
// MASTER and every other keepalived of the cluster is BACKUP.
func (c *cluster) waitKeepalivedSettled(ctx context.Context, holder func() string) error {
	ctx, cancel := context.WithTimeout(ctx, kaSettleTimeout)
	defer cancel()
	var (
		why    string
		stable time.Time // since when the condition holds; zero while it does not
	)
	err := poll(ctx, 20*time.Millisecond, func() (bool, error) {
		holder := holder()
		for _, s := range c.servers {
			p := c.kas[s.Name()]
			if p == nil {
				return false, fmt.Errorf("keepalived is not running on %s", s.Name())
			}
			select {
			case <-p.Done():
				return false, fmt.Errorf("keepalived on %s exited: %s", s.Name(), p.Tail())
			default:
			}
			want := "BACKUP"
			if s.Name() == holder {
				want = "MASTER"
			}
			if st := c.kaStateOf(p); st != want {
				why = fmt.Sprintf("%s is %q, want %s (API holder %q)", s.Name(), st, want, holder)
				stable = time.Time{}
				return false, nil
			}
		}
		// A notify script of an instance that was MASTER for a moment may
		// still be moving the address (it waits for the action): the state
		// must hold for longer than one such script takes, or the next
		// trial's crash meets a move already under way and measures less
		// than keepalived's detection (seen: 0.64 s).
		if stable.IsZero() {
			stable = time.Now()
		}
		if d := time.Since(stable); d < kaSettleStable {
			why = fmt.Sprintf("settled for %v of %v", d.Round(time.Millisecond), kaSettleStable)
			return false, nil
		}
		return true, nil
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: keepalived did not settle: %s", errNotServing, why)
	}
	return err
}

func (k keepalivedSubject) stop(_ context.Context, s *simcloud.Server) error {
	p := k.c.kas[s.Name()]
	if p == nil {
		return nil
	}
	delete(k.c.kas, s.Name())
	return p.Stop(10 * time.Second)
}

func (k keepalivedSubject) reap(s *simcloud.Server) {
	if p := k.c.kas[s.Name()]; p != nil {
		_ = p.Kill()
		delete(k.c.kas, s.Name())
	}
}
