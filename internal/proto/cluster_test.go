package proto

import (
	"errors"
	"strings"
	"testing"
)

// TestClusterMalformed: CLUSTER refuses what it cannot take, with the
// offset of the bad token, and parsing goes on at the next request.
func TestClusterMalformed(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		in   string
		code Code
		off  int
	}{
		{"missing-sub", "CLUSTER\n", CodeBadRequest, 7},
		{"unknown-sub", "CLUSTER JOIN d\n", CodeBadRequest, 8},
		{"status-extra", "CLUSTER STATUS x\n", CodeBadRequest, 15},
		{"add-missing-addr", "CLUSTER ADD d\n", CodeBadRequest, 13},
		{"add-bad-name", "CLUSTER ADD -d 127.0.0.1:1\n", CodeBadID, 12},
		{"add-addr-no-port", "CLUSTER ADD d 127.0.0.1\n", CodeBadRequest, 14},
		{"add-addr-empty-port", "CLUSTER ADD d 127.0.0.1:\n", CodeBadRequest, 14},
		{"add-addr-no-host", "CLUSTER ADD d :9420\n", CodeBadRequest, 14},
		{"add-addr-port-letters", "CLUSTER ADD d host:http\n", CodeBadRequest, 14},
		{"add-short-fingerprint", "CLUSTER ADD d h:1 abcd\n", CodeBadRequest, 18},
		{"add-fingerprint-not-hex", "CLUSTER ADD d h:1 " + strings.Repeat("zz", 32) + "\n", CodeBadRequest, 18},
		{"add-extra", "CLUSTER ADD d h:1 " + fp + " x\n", CodeBadRequest, 18 + len(fp) + 1},
		{"remove-missing", "CLUSTER REMOVE\n", CodeBadRequest, 14},
		{"remove-extra", "CLUSTER REMOVE a b\n", CodeBadRequest, 17},
		{"leader-bad-name", "CLUSTER LEADER a/b\n", CodeBadID, 15},
	}
	for _, tt := range tests {
		t.Run("case="+tt.name, func(t *testing.T) {
			p := NewParser(DefaultLimits())
			in := []byte(tt.in + "PING\n")
			req, n, err := p.Next(in)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Next(%q) = %s, %d, %v; want a *Error", tt.in, fmtReq(req), n, err)
			}
			if e.Code != tt.code || e.Offset != tt.off || n != len(tt.in) {
				t.Errorf("Next(%q) = %d, %s; want code %v at offset %d, %d bytes", tt.in, n, fmtErr(err), tt.code, tt.off, len(tt.in))
			}
			if req, _, err := p.Next(in[n:]); err != nil || req.Cmd != CmdPing {
				t.Errorf("after %q: %s, %v; want PING", tt.in, fmtReq(req), err)
			}
		})
	}
}

// TestClusterCase: the subcommand, like the verb, is matched without
// regard to case; the name and address are kept as sent.
func TestClusterCase(t *testing.T) {
	req, _, err := NewParser(DefaultLimits()).Next([]byte("cluster leader Node-D\n"))
	if err != nil || req.Cmd != CmdCluster || req.Cluster != ClusterLeader || string(req.ID) != "Node-D" {
		t.Fatalf("cluster leader Node-D = %s, %v", fmtReq(req), err)
	}
}
