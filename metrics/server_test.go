package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrapePasswordHash is bcrypt("scrape-secret", cost 4): the web config file
// holds only hashes, and a low cost keeps the test fast.
const scrapePasswordHash = "$2a$04$oYWtKukXN3V8.ZbpG3z1f.QwFei5OaB8V.7cefTf.60JdVntDcJE."

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key to
// dir and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hc-agent test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestServeWebConfigTLSBasicAuth serves with a node_exporter style web
// config file (TLS and basic auth) and scrapes with and without the
// credentials and over plain HTTP.
func TestServeWebConfigTLSBasicAuth(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	webConfig := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(webConfig, []byte(`tls_server_config:
  cert_file: `+certFile+`
  key_file: `+keyFile+`
basic_auth_users:
  prometheus: `+scrapePasswordHash+`
`), 0o600))

	reg := prometheus.NewPedanticRegistry()
	New(reg, BuildInfo{Version: "v1", Commit: "c"})
	srv, err := Listen("127.0.0.1:0", Handler(reg, nil, nil), slog.New(slog.DiscardHandler), WithWebConfigFile(webConfig))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	addr := srv.Addr().String()
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	tests := []struct {
		name     string
		url      string
		user     string
		password string
		wantCode int
		wantBody string
	}{
		{name: "tls with credentials", url: "https://" + addr + "/metrics", user: "prometheus", password: "scrape-secret", wantCode: 200, wantBody: "hcagent_build_info"},
		{name: "status over tls with credentials", url: "https://" + addr + "/status", user: "prometheus", password: "scrape-secret", wantCode: 200, wantBody: "{}"},
		{name: "tls without credentials", url: "https://" + addr + "/metrics", wantCode: 401, wantBody: "Unauthorized"},
		{name: "tls with a wrong password", url: "https://" + addr + "/status", user: "prometheus", password: "guess", wantCode: 401, wantBody: "Unauthorized"},
		{name: "tls with an unknown user", url: "https://" + addr + "/metrics", user: "root", password: "scrape-secret", wantCode: 401, wantBody: "Unauthorized"},
		{name: "plain http", url: "http://" + addr + "/metrics", user: "prometheus", password: "scrape-secret", wantCode: 400, wantBody: "HTTPS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tt.url, nil)
			require.NoError(t, err)
			if tt.user != "" {
				req.SetBasicAuth(tt.user, tt.password)
			}
			resp, err := tlsClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantCode, resp.StatusCode)
			assert.Contains(t, string(b), tt.wantBody)
		})
	}

	t.Run("untrusted certificate is refused by the client", func(t *testing.T) {
		_, err := http.Get("https://" + addr + "/metrics")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
	})
}

// TestListenWebConfigErrors checks that a web config file that cannot serve
// fails Listen (so the daemon fails at start, not at the first scrape) and
// that the error names the file.
func TestListenWebConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{name: "missing file", path: filepath.Join(dir, "nope.yml"), wantErr: "nope.yml"},
		{name: "unknown key", path: write("unknown.yml", "tls_server_config:\n  cert_fil: x\n"), wantErr: "cert_fil"},
		{name: "missing certificate", path: write("nocert.yml", "tls_server_config:\n  cert_file: "+filepath.Join(dir, "c.pem")+"\n  key_file: "+filepath.Join(dir, "k.pem")+"\n"), wantErr: "c.pem"},
		{name: "plain password instead of a hash", path: write("plain.yml", "basic_auth_users:\n  prometheus: secret\n"), wantErr: "bcrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Listen("127.0.0.1:0", http.NotFoundHandler(), slog.New(slog.DiscardHandler), WithWebConfigFile(tt.path))
			require.Error(t, err)
			assert.Contains(t, err.Error(), "load metrics web config")
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.False(t, strings.Contains(err.Error(), "secret"), "error shows a password: %v", err)
		})
	}
	t.Run("empty path is plain http", func(t *testing.T) {
		assert.NoError(t, ValidateWebConfig(""))
	})
}
