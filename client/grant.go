package client

import (
	"fmt"
	"slices"
	"strings"
)

// grant is what the host says the connection's token allows.
type grant struct {
	readOnly bool
	regions  []string // empty: all
}

// parseGrant reads an AUTH reply's text: "rw" or "ro", then optionally
// " regions=a,b".
func parseGrant(s string) grant {
	f := strings.Fields(s)
	var g grant
	if len(f) > 0 && f[0] == "ro" {
		g.readOnly = true
	}
	for _, x := range f[1:] {
		if v, ok := strings.CutPrefix(x, "regions="); ok && v != "" {
			g.regions = strings.Split(v, ",")
		}
	}
	return g
}

// allows reports whether the token lets this client use region id
// directly (and write it, if write).
func (c *Conn) allows(id string, write bool) error {
	var g grant
	if p := c.grant.Load(); p != nil {
		g = *p
	}
	if write && g.readOnly {
		return fmt.Errorf("%w: the token is read-only", ErrForbidden)
	}
	if len(g.regions) > 0 && !slices.Contains(g.regions, id) {
		return fmt.Errorf("%w: the token does not cover region %q", ErrForbidden, id)
	}
	return nil
}
