package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/shmgr/shmgr/client"
)

// readResult is read's --json output.
type readResult struct {
	ShmID   string `json:"shm_id"`
	Version uint64 `json:"version"`
	Length  int    `json:"length"`
	// Content is always present: "" for an empty region, and for content
	// that is not valid UTF-8 (then in ContentBase64).
	Content string `json:"content"`
	// ContentBase64 holds content that is not valid UTF-8.
	ContentBase64 string `json:"content_base64,omitempty"`
	Mode          string `json:"mode"`
}

func newReadCmd(g *globals) *cobra.Command {
	var off, n int64
	c := &cobra.Command{
		Use:   "read",
		Short: "Print a region's content",
		Long: `Print a region's content to standard output, exactly as stored (a newline
is added only when standard output is a terminal).`,
		Example: `  shmgr read
  shmgr read --host 192.168.1.5:9410 --id sensors
  shmgr read --json
  shmgr read --id big --offset 4096 --length 64 > part.bin`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if off < 0 {
				return usageError{fmt.Errorf("--offset %d: must be 0 or more", off)}
			}
			if c.Flags().Changed("length") && n < 0 {
				return usageError{fmt.Errorf("--length %d: must be 0 or more (leave it out to read to the end)", n)}
			}
			ctx, cancel := g.withTimeout(c.Context())
			defer cancel()
			r, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			var b []byte
			var v uint64
			if c.Flags().Changed("offset") || c.Flags().Changed("length") {
				if !c.Flags().Changed("length") {
					n = -1 // to the end
				}
				b, v, err = r.ReadAt(ctx, off, n)
			} else {
				b, v, err = r.ReadVersion(ctx)
			}
			if err != nil {
				return fmt.Errorf("read %q: %w", r.ID(), err)
			}
			out := c.OutOrStdout()
			if g.json {
				res := readResult{ShmID: r.ID(), Version: v, Length: len(b), Mode: r.Mode().String()}
				if utf8.Valid(b) {
					res.Content = string(b)
				} else {
					res.ContentBase64 = encodeBase64(b)
				}
				return printJSON(out, res)
			}
			if _, err := out.Write(b); err != nil {
				return err
			}
			if isTerminal(out) && !bytes.HasSuffix(b, []byte("\n")) {
				fmt.Fprintln(out)
			}
			return nil
		},
	}
	addClientFlags(c, g, true)
	c.Flags().Int64Var(&off, "offset", 0, "read from this byte offset of the content")
	c.Flags().Int64Var(&n, "length", 0, "read at most this many bytes")
	c.Flags().Lookup("length").DefValue = "to the end"
	return c
}

// writeResult is write's --json output.
type writeResult struct {
	ShmID   string `json:"shm_id"`
	Version uint64 `json:"version"`
	Length  int    `json:"length"`
	Mode    string `json:"mode"`
}

func newWriteCmd(g *globals) *cobra.Command {
	var file string
	var off int64
	var ifVersion uint64
	c := &cobra.Command{
		Use:   "write [TEXT | -]",
		Short: "Write content to a region (atomically, under its lock)",
		Long: `Replace a region's content with TEXT, the content of --file, or standard
input (when TEXT is "-" or missing). The bytes are written exactly as
given. A write that does not fit (4091 bytes in the default region) or is
not UTF-8 (utf8 layout) is refused, and the region keeps its content.

Empty standard input (an empty pipe, or /dev/null) writes empty content,
and says so on standard error.`,
		Example: `  shmgr write "hello world"
  echo -n "from a pipe" | shmgr write
  shmgr write --file config.json --id settings
  shmgr write --if-version 41 "only if nobody wrote since version 41"
  shmgr write --id big --offset 4096 --file patch.bin`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			p, fromStdin, err := writeInput(c, args, file)
			if err != nil {
				return err
			}
			if fromStdin && len(p) == 0 {
				fmt.Fprintln(c.ErrOrStderr(), "shmgr write: standard input was empty: writing empty content (0 bytes)")
			}
			ctx, cancel := g.withTimeout(c.Context())
			defer cancel()
			r, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			var v uint64
			switch {
			case c.Flags().Changed("offset"):
				v, err = r.WriteAt(ctx, off, p)
			case c.Flags().Changed("if-version"):
				v, err = r.WriteIf(ctx, p, ifVersion)
			default:
				v, err = r.Write(ctx, p)
			}
			if err != nil {
				return fmt.Errorf("write %q: %w%s", r.ID(), err, writeHint(err, r, off+int64(len(p))))
			}
			if g.json {
				return printJSON(c.OutOrStdout(), writeResult{ShmID: r.ID(), Version: v, Length: len(p), Mode: r.Mode().String()})
			}
			if isTerminal(c.OutOrStdout()) {
				fmt.Fprintf(c.OutOrStdout(), "wrote %d bytes to %q (version %d, %s)\n", len(p), r.ID(), v, r.Mode())
			}
			return nil
		},
	}
	addClientFlags(c, g, true)
	c.Flags().StringVarP(&file, "file", "f", "", "write the content of this file")
	c.Flags().Int64Var(&off, "offset", 0, "write at this byte offset instead of replacing the content")
	c.Flags().Uint64Var(&ifVersion, "if-version", 0, "write only if the region is still at this version")
	return c
}

// writeHint adds what to do about a failed write that would have ended at
// byte end.
func writeHint(err error, r *client.Region, end int64) string {
	switch {
	case errors.Is(err, client.ErrTooLarge) && end <= r.MaxContent():
		// It fits the region but not its undo area: the error names the
		// max write and --max-write already.
		return ""
	case errors.Is(err, client.ErrTooLarge):
		return fmt.Sprintf("\nthe region holds at most %d bytes: shorten the content or create a larger region (shmgr create ID --size N)", r.MaxContent())
	case errors.Is(err, client.ErrInvalidUTF8):
		return "\nthis region stores UTF-8 text: use a raw region (shmgr create ID --layout raw) for binary data"
	case errors.Is(err, client.ErrConflict):
		return "\nthe region changed since that version: read it again and retry"
	}
	return ""
}

// maxInput bounds what write reads from a file or stdin (1 GiB + 64 KiB,
// the protocol's payload limit).
const maxInput = 1<<30 + 64<<10

// writeInput returns the content to write, and whether it came from
// standard input.
func writeInput(c *cobra.Command, args []string, file string) ([]byte, bool, error) {
	switch {
	case file != "" && len(args) > 0:
		return nil, false, usageError{errors.New("give the content as TEXT or --file, not both")}
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, false, fmt.Errorf("write: %w", err)
		}
		defer f.Close()
		b, err := readAll(f, file)
		return b, false, err
	case len(args) == 1 && args[0] != "-":
		return []byte(args[0]), false, nil
	}
	if isTerminal(c.InOrStdin()) {
		fmt.Fprintln(c.ErrOrStderr(), "reading the content from standard input; end it with Ctrl-D")
	}
	b, err := readAll(c.InOrStdin(), "standard input")
	return b, true, err
}

func readAll(r io.Reader, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("write: reading %s: %w", what, err)
	}
	if len(b) > maxInput {
		return nil, fmt.Errorf("write: %s is larger than %d bytes, the most one write can carry", what, maxInput)
	}
	return b, nil
}

func newLsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List a host's regions",
		Example: `  shmgr ls
  shmgr ls --host 192.168.1.5:9410 --json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			ctx, cancel := g.withTimeout(c.Context())
			defer cancel()
			conn, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			list, err := conn.List(ctx)
			if err != nil {
				return fmt.Errorf("ls: %w", err)
			}
			if g.json {
				if list == nil {
					list = []client.Info{}
				}
				return printJSON(c.OutOrStdout(), list)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHM_ID\tSIZE\tLAYOUT\tVERSION\tDURABLE\tLOCKED\tOS NAME")
			for _, in := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%v\t%s\n", in.ShmID, humanBytes(in.Size), in.Layout, in.Version, in.Durable, in.Locked, in.OSName)
			}
			return tw.Flush()
		},
	}
	addClientFlags(c, g, false)
	return c
}

// idArg takes the shm_id from the one positional argument or --id.
func idArg(g *globals, args []string) (string, error) {
	switch {
	case len(args) == 1 && g.id != "" && args[0] != g.id:
		return "", usageError{fmt.Errorf("two different shm_ids given: %q and --id %q", args[0], g.id)}
	case len(args) == 1:
		return args[0], nil
	case g.id != "":
		return g.id, nil
	}
	return "", usageError{errors.New("no shm_id given: pass it as an argument or with --id")}
}

func newCreateCmd(g *globals) *cobra.Command {
	var o client.CreateOptions
	c := &cobra.Command{
		Use:   "create SHM_ID",
		Short: "Create a region on a host",
		Long: `Create a region. The utf8 layout is the documented one (lock flag, uint32
length, UTF-8 data); raw holds bytes, from 1 byte to 1 GiB and more.
A durable region is backed by a file in the host's data directory and
keeps its content across reboots.

A region costs its size plus a control block in shared memory: the
control block's undo area keeps the old bytes of a write until it
commits, and by default holds a write of the whole region, so a region
costs about twice its size. A raw region whose writes are smaller can
say so with --max-write N: its undo area holds N bytes (it costs size +
N + 4 KiB), and any write of more than N bytes is refused. create prints
what the region costs.`,
		Example: `  shmgr create sensors
  shmgr create notes --size 65536
  shmgr create frames --layout raw --size 16777216
  shmgr create frames --layout raw --size 2147483648 --max-write 1048576
  shmgr create config --durable --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := idArg(g, args)
			if err != nil {
				return err
			}
			if o.Layout != "utf8" && o.Layout != "raw" {
				return usageError{fmt.Errorf("--layout %q: use utf8 (the documented layout) or raw", o.Layout)}
			}
			if o.Size <= 0 {
				return usageError{fmt.Errorf("--size %d: must be at least 1 byte (6 for utf8)", o.Size)}
			}
			if c.Flags().Changed("max-write") {
				if err := checkMaxWriteFlag(o); err != nil {
					return usageError{err}
				}
			}
			ctx, cancel := g.withTimeout(c.Context())
			defer cancel()
			conn, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			in, err := conn.Create(ctx, id, o)
			if err != nil {
				return fmt.Errorf("create %q: %w", id, err)
			}
			if g.json {
				return printJSON(c.OutOrStdout(), in)
			}
			out := c.OutOrStdout()
			fmt.Fprintf(out, "created %q: %s, %s layout, up to %d bytes of data (os name %s)\n", in.ShmID, humanBytes(in.Size), in.Layout, in.MaxDataSize, in.OSName)
			if in.Footprint > 0 {
				fmt.Fprintf(out, "cost: %s\n", costLine(in))
			}
			return nil
		},
	}
	addClientFlags(c, g, true)
	c.Flags().Int64Var(&o.Size, "size", 4096, "size in bytes")
	c.Flags().StringVar(&o.Layout, "layout", "utf8", "utf8 (the documented layout) or raw")
	c.Flags().BoolVar(&o.Durable, "durable", false, "back the region with a file so it survives reboots")
	c.Flags().Int64Var(&o.MaxWrite, "max-write", 0, "raw only: the largest write in bytes (1 to --size); the undo area holds this much instead of the whole size (default: the whole size)")
	return c
}

// checkMaxWriteFlag checks --max-write before anything is sent: 1 to
// the size, raw and not durable (the host checks the same; saying it here
// makes it a usage error).
func checkMaxWriteFlag(o client.CreateOptions) error {
	switch {
	case o.Layout != "raw":
		return fmt.Errorf("--max-write applies to raw regions only (add --layout raw): a utf8 write saves the content up to its end, so a utf8 region's undo area is always its whole size")
	case o.Durable:
		return fmt.Errorf("--max-write cannot be used with --durable: a durable region's checkpoint is restored as one write, so its undo area is its whole size")
	case o.MaxWrite < 1 || o.MaxWrite > o.Size:
		return fmt.Errorf("--max-write %d: must be 1 to the region's size (--size %d)", o.MaxWrite, o.Size)
	}
	return nil
}

// costLine says what a region costs: in shared memory (/dev/shm on
// Linux) or on disk, and how that splits into data and control block.
func costLine(in client.Info) string {
	where := "shared memory"
	if runtime.GOOS == "linux" {
		where = "/dev/shm"
	}
	if in.Durable {
		where = "disk"
	}
	s := fmt.Sprintf("%s of %s (%d bytes: %s data + %s control block", humanBytes(in.Footprint), where, in.Footprint, humanBytes(in.Size), humanBytes(in.Footprint-in.Size))
	if in.MaxWrite > 0 {
		s += fmt.Sprintf(", whose undo area holds writes of up to %s", humanBytes(in.MaxWrite))
	}
	return s + ")"
}

func newRmCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:     "rm SHM_ID",
		Aliases: []string{"delete"},
		Short:   "Delete a region from a host",
		Example: `  shmgr rm sensors
  shmgr rm --id sensors --host 192.168.1.5:9410`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := idArg(g, args)
			if err != nil {
				return err
			}
			ctx, cancel := g.withTimeout(c.Context())
			defer cancel()
			conn, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := conn.Delete(ctx, id); err != nil {
				return fmt.Errorf("rm %q: %w", id, err)
			}
			if g.json {
				return printJSON(c.OutOrStdout(), map[string]any{"shm_id": id, "deleted": true})
			}
			fmt.Fprintf(c.OutOrStdout(), "deleted %q\n", id)
			return nil
		},
	}
	addClientFlags(c, g, true)
	return c
}

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
			ctx, cancel := g.withTimeout(c.Context())
			defer cancel()
			conn, err := g.connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			out := c.OutOrStdout()
			if g.id != "" {
				in, err := conn.Info(ctx, g.id)
				if err != nil {
					return fmt.Errorf("info %q: %w", g.id, err)
				}
				if g.json {
					return printJSON(out, in)
				}
				printRegion(out, in)
				return nil
			}
			hi, err := conn.HostInfo(ctx)
			if err != nil {
				return fmt.Errorf("info: %w", err)
			}
			list, err := conn.List(ctx)
			if err != nil {
				return fmt.Errorf("info: %w", err)
			}
			if g.json {
				return printJSON(out, infoResult{Host: hi, Address: conn.Addr(), Regions: list})
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "host:\t%s\n", conn.Addr())
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
			return nil
		},
	}
	addClientFlags(c, g, true)
	return c
}

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
