package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/client"
)

// watchEvent is one line of watch --json.
type watchEvent struct {
	ShmID   string `json:"shm_id"`
	Version uint64 `json:"version"`
	Skipped uint64 `json:"skipped"`
	Length  int    `json:"length"`
	// Content is always present: "" for empty content, and for content
	// that is not valid UTF-8 (then in ContentBase64).
	Content string `json:"content"`
	// ContentBase64 holds content that is not valid UTF-8.
	ContentBase64 string `json:"content_base64,omitempty"`
}

func newWatchCmd(g *globals) *cobra.Command {
	var count int
	var from uint64
	c := &cobra.Command{
		Use:   "watch",
		Short: "Print each new version of a region as it commits",
		Long: `Print each committed version of a region the moment it commits, one per
line: the version, a tab, and the content (newlines and other control
characters escaped as \n, \t, \xNN). The host pushes changes; nothing
polls. A local region is watched through the kernel (a futex on the
region's version word). The watch rides through host restarts and network
drops by itself, resuming from the last version it printed; connection
changes are reported on standard error.

A watcher that falls behind gets the latest state, not every version:
--json reports how many versions it skipped.`,
		Example: `  shmgr watch
  shmgr watch --host 192.168.1.5:9410 --id sensors --json
  shmgr watch --count 2          # the current state and the next change, then exit
  shmgr watch --from 41          # every version after 41`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			// The shape of withClient, except that --timeout bounds only
			// connecting and starting the watch, and each event is printed
			// as it comes.
			ctx := c.Context()
			stderr := c.ErrOrStderr()
			dctx, cancel := g.withTimeout(ctx)
			r, err := g.dialWith(dctx, func(o *client.Options) {
				o.OnState = func(s client.State) {
					if s != client.StateClosed {
						fmt.Fprintf(stderr, "shmgr watch: %s\n", s)
					}
				}
			})
			if err != nil {
				cancel()
				return err
			}
			defer r.Close()
			w, err := r.Watch(dctx, client.WatchOptions{From: from, HasFrom: c.Flags().Changed("from")})
			cancel()
			if err != nil {
				return fmt.Errorf("watch %q: %w", r.ID(), err)
			}
			defer w.Close()
			out := c.OutOrStdout()
			for n := 0; count <= 0 || n < count; n++ {
				ev, err := w.Next(ctx)
				if err != nil {
					if errors.Is(err, ctx.Err()) {
						return nil // interrupted
					}
					return fmt.Errorf("watch %q: %w", r.ID(), err)
				}
				if err := printEvent(out, r.ID(), ev, g.json); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addClientFlags(c, g, true)
	// For watch, --timeout bounds only connecting.
	g.timeout = 0
	f := c.Flags().Lookup("timeout")
	f.DefValue = "0"
	f.Usage = "give up connecting after this long (0: the default dial timeout); the watch itself runs until interrupted"
	c.Flags().IntVar(&count, "count", 0, "exit after printing this many versions (0: run until interrupted)")
	c.Flags().Uint64Var(&from, "from", 0, "print only versions after this one")
	return c
}

func printEvent(w io.Writer, id string, ev client.Event, asJSON bool) error {
	if asJSON {
		e := watchEvent{ShmID: id, Version: ev.Version, Skipped: ev.Skipped, Length: len(ev.Content)}
		if utf8.Valid(ev.Content) {
			e.Content = string(ev.Content)
		} else {
			e.ContentBase64 = encodeBase64(ev.Content)
		}
		return printJSON(w, e)
	}
	_, err := fmt.Fprintf(w, "%d\t%s\n", ev.Version, escapeLine(ev.Content))
	return err
}

// escapeLine makes content fit on one line: backslash, newline, tab and
// other control bytes and invalid UTF-8 are escaped.
func escapeLine(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == utf8.RuneError && n <= 1, r < 0x20, r == 0x7f:
			sb.WriteString(`\x`)
			s := strconv.FormatUint(uint64(b[0]), 16)
			if len(s) == 1 {
				sb.WriteByte('0')
			}
			sb.WriteString(s)
			n = 1
		default:
			sb.Write(b[:n])
		}
		b = b[n:]
	}
	return sb.String()
}
