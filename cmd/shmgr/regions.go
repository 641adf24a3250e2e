package main

import (
	"bytes"
	"context"
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
	var consistent bool
	c := &cobra.Command{
		Use:   "read",
		Short: "Print a region's content",
		Long: `Print a region's content to standard output, exactly as stored (a newline
is added only when standard output is a terminal).

On a cluster host a read is served from that host's copy, at most the
replication lag behind. With --consistent the host first confirms with the
cluster's leader and applies every write acknowledged before the read
(linearizable); a host that cannot reach the leader refuses it
("unavailable") instead of printing what may be stale. On a single host
--consistent changes nothing.`,
		Example: `  shmgr read
  shmgr read --host 192.168.1.5:9410 --id sensors
  shmgr read --json
  shmgr read --id big --offset 4096 --length 64 > part.bin
  shmgr read --host 10.0.0.2:9410 --consistent`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if off < 0 {
				return usageError{fmt.Errorf("--offset %d: must be 0 or more", off)}
			}
			if c.Flags().Changed("length") && n < 0 {
				return usageError{fmt.Errorf("--length %d: must be 0 or more (leave it out to read to the end)", n)}
			}
			return withClient(c, g, (*globals).dial, func(ctx context.Context, r *client.Region) (result, error) {
				var b []byte
				var v uint64
				var err error
				o := client.ReadOptions{Consistent: consistent}
				if c.Flags().Changed("offset") || c.Flags().Changed("length") {
					if !c.Flags().Changed("length") {
						n = -1 // to the end
					}
					b, v, err = r.ReadAtWith(ctx, off, n, o)
				} else {
					b, v, err = r.ReadWith(ctx, o)
				}
				if err != nil {
					return result{}, fmt.Errorf("read %q: %w", r.ID(), err)
				}
				res := readResult{ShmID: r.ID(), Version: v, Length: len(b), Mode: r.Mode().String()}
				if utf8.Valid(b) {
					res.Content = string(b)
				} else {
					res.ContentBase64 = encodeBase64(b)
				}
				return result{json: res, text: func(out io.Writer) error {
					if _, err := out.Write(b); err != nil {
						return err
					}
					if isTerminal(out) && !bytes.HasSuffix(b, []byte("\n")) {
						fmt.Fprintln(out)
					}
					return nil
				}}, nil
			})
		},
	}
	addClientFlags(c, g, true)
	c.Flags().Int64Var(&off, "offset", 0, "read from this byte offset of the content")
	c.Flags().Int64Var(&n, "length", 0, "read at most this many bytes")
	c.Flags().Lookup("length").DefValue = "to the end"
	c.Flags().BoolVar(&consistent, "consistent", false, "on a cluster host: a linearizable read, confirmed with the leader (refused if it cannot be reached)")
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
			return withClient(c, g, (*globals).dial, func(ctx context.Context, r *client.Region) (result, error) {
				var v uint64
				var err error
				switch {
				case c.Flags().Changed("offset"):
					v, err = r.WriteAt(ctx, off, p)
				case c.Flags().Changed("if-version"):
					v, err = r.WriteIf(ctx, p, ifVersion)
				default:
					v, err = r.Write(ctx, p)
				}
				if err != nil {
					return result{}, fmt.Errorf("write %q: %w%s", r.ID(), err, writeHint(err, r, off+int64(len(p))))
				}
				return result{
					json: writeResult{ShmID: r.ID(), Version: v, Length: len(p), Mode: r.Mode().String()},
					text: func(out io.Writer) error {
						if isTerminal(out) {
							fmt.Fprintf(out, "wrote %d bytes to %q (version %d, %s)\n", len(p), r.ID(), v, r.Mode())
						}
						return nil
					},
				}, nil
			})
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
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				list, err := conn.List(ctx)
				if err != nil {
					return result{}, fmt.Errorf("ls: %w", err)
				}
				if list == nil {
					list = []client.Info{}
				}
				return result{json: list, text: func(out io.Writer) error {
					tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "SHM_ID\tSIZE\tLAYOUT\tVERSION\tDURABLE\tLOCKED\tOS NAME")
					for _, in := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%v\t%v\t%s\n", in.ShmID, humanBytes(in.Size), in.Layout, in.Version, in.Durable, in.Locked, in.OSName)
					}
					return tw.Flush()
				}}, nil
			})
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
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				in, err := conn.Create(ctx, id, o)
				if err != nil {
					return result{}, fmt.Errorf("create %q: %w", id, err)
				}
				return result{json: in, text: func(out io.Writer) error {
					fmt.Fprintf(out, "created %q: %s, %s layout, up to %d bytes of data (os name %s)\n", in.ShmID, humanBytes(in.Size), in.Layout, in.MaxDataSize, in.OSName)
					if in.Footprint > 0 {
						fmt.Fprintf(out, "cost: %s\n", costLine(in))
					}
					return nil
				}}, nil
			})
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
			return withClient(c, g, (*globals).connect, func(ctx context.Context, conn *client.Conn) (result, error) {
				if err := conn.Delete(ctx, id); err != nil {
					return result{}, fmt.Errorf("rm %q: %w", id, err)
				}
				return result{json: map[string]any{"shm_id": id, "deleted": true}, text: func(out io.Writer) error {
					fmt.Fprintf(out, "deleted %q\n", id)
					return nil
				}}, nil
			})
		},
	}
	addClientFlags(c, g, true)
	return c
}
