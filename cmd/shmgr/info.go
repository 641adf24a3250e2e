package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/client"
)

// infoResult is info's --json output without --id.
type infoResult struct {
	Host    client.HostInfo `json:"host"`
	Address string          `json:"address"`
	Regions []client.Info   `json:"regions"`
}

func newInfoCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "info",
		Short: "Show a host's state, or one region's",
		Example: `  shmgr info
  shmgr info --id default --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				if g.id != "" {
					in, err := conn.Info(ctx, g.id)
					if err != nil {
						return result{}, fmt.Errorf("info %q: %w", g.id, err)
					}
					return result{json: in, text: func(out io.Writer) error {
						printRegion(out, in)
						return nil
					}}, nil
				}
				hi, err := conn.HostInfo(ctx)
				if err != nil {
					return result{}, fmt.Errorf("info: %w", err)
				}
				list, err := conn.List(ctx)
				if err != nil {
					return result{}, fmt.Errorf("info: %w", err)
				}
				return result{json: infoResult{Host: hi, Address: conn.Addr(), Regions: list}, text: func(out io.Writer) error {
					printHost(out, conn.Addr(), hi, list)
					return nil
				}}, nil
			})
		},
	}
	addClientFlags(c, g, true)
	return c
}

// printHost prints what info prints without --id: the host at addr, its
// clients, then each region of list.
func printHost(out io.Writer, addr string, hi client.HostInfo, list []client.Info) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "host:\t%s\n", addr)
	fmt.Fprintf(tw, "server:\t%s (%s, pid %d)\n", hi.Server, hi.Proto, hi.PID)
	fmt.Fprintf(tw, "host id:\t%s\n", hi.HostID)
	fmt.Fprintf(tw, "started:\t%s\n", hi.Started.Local().Format("2006-01-02 15:04:05"))
	auth := hi.Auth
	if hi.Insecure {
		auth += " (INSECURE: reachable beyond loopback without tokens)"
	}
	fmt.Fprintf(tw, "auth:\t%s\n", auth)
	fmt.Fprintf(tw, "connections:\t%d open, %d accepted\n", hi.Connections, hi.Accepted)
	fmt.Fprintf(tw, "limits:\tline %d B, payload %s, lock timeout %s, lease at most %s\n", hi.MaxLine, humanBytes(hi.MaxPayload), hi.LockTimeout, hi.Limits.MaxLease)
	fmt.Fprintf(tw, "\t%d connections, %d watches each; idle %s, read %s, write %s\n", hi.Limits.MaxConnections, hi.Limits.MaxWatches, hi.Limits.IdleTimeout, hi.Limits.ReadTimeout, hi.Limits.WriteTimeout)
	fmt.Fprintf(tw, "default region:\t%s\n", hi.Default)
	fmt.Fprintf(tw, "regions:\t%d\n", hi.Regions)
	tw.Flush()
	if len(hi.Clients) > 0 {
		fmt.Fprintln(out)
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT\tSINCE\tTOKEN\tWATCHES\tLEASES")
		for _, cl := range hi.Clients {
			tok := cl.Token
			if tok == "" {
				tok = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", cl.Addr, cl.Since.Local().Format("15:04:05"), tok, cl.Watches, cl.Leases)
		}
		tw.Flush()
	}
	for _, in := range list {
		fmt.Fprintln(out)
		printRegion(out, in)
	}
}

// printRegion prints one region as info --id does.
func printRegion(w io.Writer, in client.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "shm_id:\t%s\n", in.ShmID)
	fmt.Fprintf(tw, "size:\t%d bytes (%s layout, up to %d bytes of data)\n", in.Size, in.Layout, in.MaxDataSize)
	fmt.Fprintf(tw, "version:\t%d\n", in.Version)
	fmt.Fprintf(tw, "os name:\t%s (%s)\n", in.OSName, in.OSKind)
	fmt.Fprintf(tw, "durable:\t%v\n", in.Durable)
	switch {
	case in.MaxWrite <= 0: // a host older than max_write
	case in.MaxWrite >= in.Size:
		fmt.Fprintf(tw, "max write:\t%d bytes (the whole region)\n", in.MaxWrite)
	default:
		fmt.Fprintf(tw, "max write:\t%d bytes (larger writes are refused: recreate the region with a larger --max-write to change it)\n", in.MaxWrite)
	}
	if in.Footprint > 0 {
		// The undo area: a region costs up to twice its size.
		fmt.Fprintf(tw, "cost:\t%s\n", costLine(in))
	}
	lock := "free"
	if in.Locked {
		lock = "held"
		if in.LockPID != 0 {
			lock += fmt.Sprintf(" by pid %d (%s)", in.LockPID, in.LockOwner)
		} else {
			lock += " by a program outside shmgr (offset-0 flag)"
		}
	}
	fmt.Fprintf(tw, "lock:\t%s\n", lock)
	fmt.Fprintf(tw, "created:\t%s\n", in.Created.Local().Format("2006-01-02 15:04:05"))
	tw.Flush()
}
